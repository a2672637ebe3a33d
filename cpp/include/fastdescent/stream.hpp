// The bandwidth probe: a plain streaming loop that moves the same bytes per element as an
// optimizer (reads `Arrays` arrays, writes the first `Written` of them in place), with
// next to no arithmetic, so a benchmark can say what fraction of the machine's limit for
// that access pattern a kernel reaches.
#pragma once

#include <cstdint>

#include "loop.hpp"

namespace fastdescent {
inline namespace FASTDESCENT_ARCH {

template <class T, int Arrays, int Written>
void stream_arrays(std::int64_t n, T* const* arrays) {
  static_assert(Written <= Arrays && Arrays <= 5, "the probe covers up to 5 arrays");
  T* a[5] = {};
  for (int k = 0; k < Arrays; ++k) a[k] = arrays[k];
  for_each_element(n, [=](std::int64_t i) {
    T sum = T(0);
    for (int k = 0; k < Arrays; ++k) sum += a[k][i];
    // Halving keeps repeated calls finite; the stores depend on every load, so none is
    // optimized away.
    for (int k = 0; k < Written; ++k) a[k][i] = T(0.5) * sum - T(k);
  });
}

}  // namespace FASTDESCENT_ARCH
}  // namespace fastdescent
