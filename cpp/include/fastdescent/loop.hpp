// The one elementwise loop skeleton every optimizer kernel runs on.
//
// An update rule is a callable `update(i)` that reads and writes element i of its arrays and
// nothing else, so iterations are independent: the loop may be split across threads and
// vectorized. Keeping the skeleton in one place means SIMD, threading and grain size are
// decided once for every rule.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#if defined(FASTDESCENT_OPENMP)
#include <omp.h>
#endif

namespace fastdescent {

// Below this many elements a step runs on one thread: waking a team costs a few
// microseconds, about what one core needs to stream 64K floats of Adam state.
inline constexpr std::int64_t kParallelGrain = std::int64_t{1} << 16;

template <class Update>
inline void for_each_element(std::int64_t n, const Update& update) {
#if defined(FASTDESCENT_OPENMP)
  // `simd` asserts what the rule's contract guarantees (no dependence between elements), so
  // the compiler vectorizes without proving the arrays do not alias.
#pragma omp parallel for simd schedule(static) if (n >= 2 * kParallelGrain)
  for (std::int64_t i = 0; i < n; ++i) update(i);
#else
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
  for (std::int64_t i = 0; i < n; ++i) update(i);
#endif
}

// Calls f with one std::integral_constant<bool, ...> per runtime flag, so each combination of
// options compiles to its own branch-free loop.
template <class F>
inline void with_flags(F&& f) {
  f();
}

template <class F, class... Rest>
inline void with_flags(F&& f, bool first, Rest... rest) {
  if (first) {
    with_flags([&](auto... flags) { f(std::true_type{}, flags...); }, rest...);
  } else {
    with_flags([&](auto... flags) { f(std::false_type{}, flags...); }, rest...);
  }
}

// torch's lerp, so that moving averages round exactly as torch.optim's do:
// self + weight * (end - self), computed from the nearer end.
template <class T>
inline T lerp(T self, T end, T weight) {
  return (weight < T(0.5) && weight > T(-0.5)) ? self + weight * (end - self)
                                               : end - (end - self) * (T(1) - weight);
}

}  // namespace fastdescent
