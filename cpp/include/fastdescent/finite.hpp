// Scan for NaN or infinity, for step(check_finite=True).
#pragma once

#include <cstdint>

#include "loop.hpp"

namespace fastdescent {
inline namespace FASTDESCENT_ARCH {

template <class T>
bool all_finite(std::int64_t n, const T* values) {
  // x - x is 0 for every finite x and NaN for NaN and +-inf; unlike std::isfinite this
  // vectorizes and stays correct without -ffinite-math-only.
  int finite = 1;
#if defined(FASTDESCENT_OPENMP)
#pragma omp simd reduction(& : finite)
#endif
  for (std::int64_t i = 0; i < n; ++i) finite &= int(values[i] - values[i] == T(0));
  return finite != 0;
}

// A float16 is NaN or infinite when its exponent bits are all ones.
inline bool all_finite(std::int64_t n, const float16* values) {
  int finite = 1;
#if defined(FASTDESCENT_OPENMP)
#pragma omp simd reduction(& : finite)
#endif
  for (std::int64_t i = 0; i < n; ++i) finite &= int((values[i].bits & 0x7C00u) != 0x7C00u);
  return finite != 0;
}

// Index of the first slot whose data[0] holds a NaN or infinity, or -1.
template <class T>
std::int64_t first_nonfinite(const Slot<T>* slots, std::size_t count) {
  for (std::size_t k = 0; k < count; ++k) {
    if (!all_finite(slots[k].size, slots[k].data[0])) return static_cast<std::int64_t>(k);
  }
  return -1;
}

}  // namespace FASTDESCENT_ARCH
}  // namespace fastdescent
