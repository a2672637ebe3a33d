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

// Each instruction-set variant of the kernels is compiled with its own FASTDESCENT_ARCH, so
// its template instances get names of their own and never stand in for another variant's.
#ifndef FASTDESCENT_ARCH
#define FASTDESCENT_ARCH baseline
#endif

namespace fastdescent {
inline namespace FASTDESCENT_ARCH {

// Below this many elements a step runs on one thread: waking a team costs a few
// microseconds, about what one core needs to stream 64K floats of Adam state.
inline constexpr std::int64_t kParallelGrain = std::int64_t{1} << 16;

template <class Update>
inline void for_each_element(std::int64_t n, const Update& update) {
#if defined(FASTDESCENT_OPENMP)
#pragma omp parallel if (n >= 2 * kParallelGrain)
  {
    // A private copy: its captured pointers become loop invariants the vectorizer can hoist
    // (read through the shared closure, each would be reloaded every iteration).
    const Update body = update;
    // `simd` asserts the rule's contract (no dependence between elements), so the compiler
    // vectorizes without having to prove that the arrays do not alias.
#pragma omp for simd schedule(static)
    for (std::int64_t i = 0; i < n; ++i) body(i);
  }
#else
  const Update body = update;
#if defined(__GNUC__)
#pragma GCC ivdep
#endif
  for (std::int64_t i = 0; i < n; ++i) body(i);
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

}  // namespace FASTDESCENT_ARCH
}  // namespace fastdescent
