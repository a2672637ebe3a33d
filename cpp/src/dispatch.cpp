// Chooses the kernels' instruction-set variant for the CPU at hand, once.
#include <fastdescent/kernel_table.hpp>

#include <atomic>
#include <stdexcept>

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

#if defined(FASTDESCENT_HAVE_AVX2)
bool cpu_has_avx2() {
  // libgcc's check covers the OS saving the wide registers (XGETBV), not only CPUID.
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif
#if defined(FASTDESCENT_HAVE_AVX512)
bool cpu_has_avx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
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
