// The bandwidth probe: a plain streaming rule that moves the same bytes per element as an
// optimizer (reads `Arrays` arrays, writes the first `Written` of them in place) with next
// to no arithmetic, over the same loop skeleton, so a benchmark can say what fraction of the
// machine's limit for that access pattern a kernel reaches. With SqrtDiv it also takes one
// square root and makes one division per element, the arithmetic that Adagrad, RMSprop and
// Adam add to the moves: in cache that variant is the divider's limit for those rules.
#pragma once

#include <cmath>
#include <cstdint>

#include "loop.hpp"

namespace fastdescent {
inline namespace FASTDESCENT_ARCH {

struct StreamOptions {};

template <class T, int Arrays, int Written, bool SqrtDiv = false>
struct Stream {
  static_assert(Written <= Arrays && Arrays <= kMaxArrays, "the probe covers up to 5 arrays");
  using value_type = T;
  using Options = StreamOptions;
  struct Coefficients {};

  static Coefficients coefficients(const Options&) { return {}; }

  static void run(const Coefficients&, std::int64_t begin, std::int64_t end, T* const* arrays) {
    T* a[kMaxArrays] = {};
    for (int k = 0; k < Arrays; ++k) a[k] = arrays[k];
    // Named pointers, not an array, so the vectorizer sees plain loop invariants.
    T* a0 = a[0];
    T* a1 = a[Arrays > 1 ? 1 : 0];
    T* a2 = a[Arrays > 2 ? 2 : 0];
    T* a3 = a[Arrays > 3 ? 3 : 0];
    T* a4 = a[Arrays > 4 ? 4 : 0];
    for_range(begin, end, [=](std::int64_t i) {
      T sum = a0[i];
      if constexpr (Arrays > 1) sum += a1[i];
      if constexpr (Arrays > 2) sum += a2[i];
      if constexpr (Arrays > 3) sum += a3[i];
      if constexpr (Arrays > 4) sum += a4[i];
      // The mean keeps repeated calls bounded; every store depends on every load.
      T mean = sum * T(1.0 / Arrays);
      // mean / (sqrt|mean| + 1) stays bounded too, and as a rule's update, the division
      // waits for the square root.
      if constexpr (SqrtDiv) mean = mean / (std::sqrt(std::abs(mean)) + T(1));
      if constexpr (Written > 0) a0[i] = mean;
      if constexpr (Written > 1) a1[i] = mean;
      if constexpr (Written > 2) a2[i] = mean;
      if constexpr (Written > 3) a3[i] = mean;
      if constexpr (Written > 4) a4[i] = mean;
    });
  }
};

}  // namespace FASTDESCENT_ARCH
}  // namespace fastdescent
