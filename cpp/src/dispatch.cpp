// Chooses the kernels' instruction-set variant for the CPU at hand, once.
#include <fastdescent/kernel_table.hpp>

#include <atomic>
#include <stdexcept>

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif

namespace fastdescent {

const KernelTable* kernels_baseline();
#if defined(FASTDESCENT_HAVE_AVX2)
const KernelTable* kernels_avx2();
#endif
#if defined(FASTDESCENT_HAVE_AVX512)
const KernelTable* kernels_avx512();
#endif

namespace {

struct Level {
  const char* name;
  const KernelTable* (*table)();
  bool (*cpu_supports)();
};

bool always() { return true; }

#if defined(_MSC_VER) && !defined(__clang__)
// MSVC has no __builtin_cpu_supports: CPUID says what the CPU has, XGETBV whether the OS
// saves the wide registers (without it the instructions fault).
bool cpuid_bit(int leaf, int register_index, int bit) {
  int registers[4];  // eax, ebx, ecx, edx
  __cpuidex(registers, leaf, 0);
  return (registers[register_index] >> bit) & 1;
}
bool os_saves(unsigned long long state_bits) {
  return cpuid_bit(1, 2, 27) && (_xgetbv(0) & state_bits) == state_bits;  // OSXSAVE
}
#endif

#if defined(FASTDESCENT_HAVE_AVX2)
bool cpu_has_avx2() {
#if defined(_MSC_VER) && !defined(__clang__)
  return os_saves(0x6) && cpuid_bit(7, 1, 5) && cpuid_bit(1, 2, 12) &&  // AVX2, FMA
         cpuid_bit(1, 2, 29);                                               // F16C
#else
  // libgcc's check covers the OS saving the wide registers (XGETBV), not only CPUID. F16C
  // (float16 conversions) comes with every AVX2 CPU made, but is its own CPUID bit.
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
#endif
}
#endif
#if defined(FASTDESCENT_HAVE_AVX512)
bool cpu_has_avx512() {
#if defined(_MSC_VER) && !defined(__clang__)
  // AVX-512 F, DQ, BW, VL; the OS saves the opmask and upper zmm state too.
  return os_saves(0xE6) && cpuid_bit(7, 1, 16) && cpuid_bit(7, 1, 17) &&
         cpuid_bit(7, 1, 30) && cpuid_bit(7, 1, 31) && cpuid_bit(1, 2, 29);  // ... F16C
#else
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("f16c");
#endif
}
#endif

const Level kLevels[] = {
    {"baseline", &kernels_baseline, &always},
#if defined(FASTDESCENT_HAVE_AVX2)
    {"avx2", &kernels_avx2, &cpu_has_avx2},
#endif
#if defined(FASTDESCENT_HAVE_AVX512)
    {"avx512", &kernels_avx512, &cpu_has_avx512},
#endif
};

const KernelTable* best_supported() {
  const KernelTable* best = nullptr;
  for (const Level& level : kLevels) {
    if (level.cpu_supports()) best = level.table();
  }
  return best;
}

std::atomic<const KernelTable*>& active() {
  static std::atomic<const KernelTable*> table{best_supported()};
  return table;
}

}  // namespace

std::vector<std::string> supported_levels() {
  std::vector<std::string> names;
  for (const Level& level : kLevels) {
    if (level.cpu_supports()) names.emplace_back(level.name);
  }
  return names;
}

const KernelTable& active_kernels() { return *active().load(std::memory_order_acquire); }

void select_level(const std::string& name) {
  for (const Level& level : kLevels) {
    if (name == level.name) {
      if (!level.cpu_supports()) {
        throw std::invalid_argument("this CPU cannot run the " + name + " kernels");
      }
      active().store(level.table(), std::memory_order_release);
      return;
    }
  }
  throw std::invalid_argument("no kernels for instruction-set level '" + name +
                              "' in this build");
}

}  // namespace fastdescent
