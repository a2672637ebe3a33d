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

}  // namespace FASTDESCENT_ARCH
}  // namespace fastdescent
