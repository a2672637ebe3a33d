// The one loop skeleton every kernel runs on: many tensors, one pass, SIMD and threads.
//
// A rule is a struct with `Options` (plain data from the caller), `Coefficients` (the
// options turned into the constants of the loop, once per call) and
// `run(coefficients, begin, end, arrays)`, which updates elements [begin, end) of one
// tensor. Elements are independent, so the skeleton may split the concatenation of all
// tensors of a step into one contiguous share per thread and vectorize every range.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <type_traits>
#include <utility>
#include <vector>

#include "float16.hpp"
#include "slot.hpp"

#if defined(FASTDESCENT_OPENMP)
#include <omp.h>
#endif

// Each instruction-set variant of the kernels is compiled with its own FASTDESCENT_ARCH, so
// its template instances get names of their own and never stand in for another variant's.
#ifndef FASTDESCENT_ARCH
#define FASTDESCENT_ARCH baseline
#endif

// Inlines every call in a function's body, recursively. On a step's loop over slots it
// puts each rule's flag dispatch and loop setup inline, once per slot rather than through
// three calls: about 10 ns less per 100-element tensor (SGD, in cache).
#if defined(__GNUC__)
#define FASTDESCENT_FLATTEN __attribute__((flatten))
#else
#define FASTDESCENT_FLATTEN
#endif

namespace fastdescent {
inline namespace FASTDESCENT_ARCH {

// Each thread gets at least this many elements: waking a team costs a few microseconds,
// about what one core needs to stream 64K floats of Adam state.
inline constexpr std::int64_t kParallelGrain = std::int64_t{1} << 16;

// Thread shares start on multiples of this many elements (a cache line of doubles and then
// some), so no two threads write the same line except at tensor ends.
inline constexpr std::int64_t kShareAlign = 64;

// body(i) for i in [begin, end), vectorized.
template <class Body>
inline void for_range(std::int64_t begin, std::int64_t end, const Body& body) {
  // A private copy: its captured pointers become loop invariants the vectorizer can hoist.
  const Body local = body;
#if defined(FASTDESCENT_OPENMP)
  // `simd` asserts the rule's contract (no dependence between elements), so the compiler
  // vectorizes without having to prove that the arrays do not alias.
#pragma omp simd
#elif defined(__GNUC__)
#pragma GCC ivdep
#endif
  for (std::int64_t i = begin; i < end; ++i) local(i);
}

// Threads a call over `total` elements uses: one per kParallelGrain elements, at most
// max_threads (1 means the calling thread alone).
inline int threads_for(std::int64_t total, int max_threads) {
  return static_cast<int>(std::max<std::int64_t>(
      1, std::min<std::int64_t>(max_threads, total / kParallelGrain)));
}

// range(thread, slot, begin, end) over every element of every slot, split across
// threads_for(total elements, max_threads) threads by total elements; `thread` is the index
// of the share in [0, threads), so that a reduction can keep one partial result per share
// and combine them in a fixed order.
template <class T, class Range>
void for_each_share(const Slot<T>* slots, std::size_t count, int max_threads,
                    const Range& range) {
  std::int64_t total = 0;
  for (std::size_t k = 0; k < count; ++k) total += slots[k].size;
  const int threads = threads_for(total, max_threads);
  if (threads <= 1) {
    for (std::size_t k = 0; k < count; ++k) {
      if (slots[k].size > 0) range(0, slots[k], 0, slots[k].size);
    }
    return;
  }
#if defined(FASTDESCENT_OPENMP)
  std::vector<std::int64_t> offsets(count + 1, 0);
  for (std::size_t k = 0; k < count; ++k) offsets[k + 1] = offsets[k] + slots[k].size;
#pragma omp parallel num_threads(threads)
  {
    const std::int64_t t = omp_get_thread_num();
    const std::int64_t nt = omp_get_num_threads();
    const std::int64_t lo = t == 0 ? 0 : (total * t / nt) / kShareAlign * kShareAlign;
    const std::int64_t hi =
        t + 1 == nt ? total : (total * (t + 1) / nt) / kShareAlign * kShareAlign;
    std::size_t k = static_cast<std::size_t>(
        std::upper_bound(offsets.begin(), offsets.end(), lo) - offsets.begin() - 1);
    for (; k < count && offsets[k] < hi; ++k) {
      const std::int64_t begin = std::max(lo, offsets[k]) - offsets[k];
      const std::int64_t end = std::min(hi, offsets[k + 1]) - offsets[k];
      if (begin < end) range(static_cast<int>(t), slots[k], begin, end);
    }
  }
#endif
}

// range(slot, begin, end) over every element of every slot, split across up to
// max_threads threads by total elements.
template <class T, class Range>
void for_each_slot(const Slot<T>* slots, std::size_t count, int max_threads,
                   const Range& range) {
  for_each_share(slots, count, max_threads,
                 [&](int, const Slot<T>& slot, std::int64_t begin, std::int64_t end) {
                   range(slot, begin, end);
                 });
}

// Elements a float16 tensor is widened by at a time: the float copies of a rule's five
// arrays (10 KB) stay in L1.
inline constexpr std::int64_t kWidenBlock = 512;

// Rule::run over elements [begin, end) of a float16 slot: each block is widened exactly into
// float buffers, the rule runs on them in float (its value_type), and the arrays it writes
// are rounded back to float16 (nearest, ties to even). The rule's values between loading and
// storing are never rounded to float16: a param update sees the float moments it computed.
template <class Rule>
void run_widened(const typename Rule::Coefficients& c, const Slot<float16>& slot,
                 std::int64_t begin, std::int64_t end) {
  using T = typename Rule::value_type;
  static_assert(std::is_same_v<T, float>, "float16 tensors are computed in float");
  alignas(64) T buffers[kMaxArrays][kWidenBlock];
  T* arrays[kMaxArrays];
  for (int a = 0; a < kMaxArrays; ++a) arrays[a] = slot.data[a] ? buffers[a] : nullptr;
  for (std::int64_t lo = begin; lo < end; lo += kWidenBlock) {
    const std::int64_t n = std::min(kWidenBlock, end - lo);
    for (int a = 0; a < kMaxArrays; ++a) {
      if (slot.data[a]) widen(slot.data[a] + lo, buffers[a], n);
    }
    Rule::run(c, 0, n, arrays);
    for (int a = 0; a < kMaxArrays; ++a) {
      if (slot.data[a] && a != kGradArray) narrow(buffers[a], slot.data[a] + lo, n);
    }
  }
}

// One multi-tensor step of `Rule`: slot k uses options[slots[k].options]. T is the tensors'
// storage type: the rule's own value_type, or float16 (computed in float by run_widened).
template <class Rule, class T = typename Rule::value_type>
FASTDESCENT_FLATTEN void step_slots(const typename Rule::Options* options, std::size_t option_count,
                const Slot<T>* slots, std::size_t slot_count, int max_threads) {
  // A step has one set of options per group and step number: usually one, kept off the heap.
  using Coefficients = typename Rule::Coefficients;
  Coefficients on_stack[4];
  std::vector<Coefficients> on_heap;
  Coefficients* coefficients = on_stack;
  if (option_count > std::size(on_stack)) {
    on_heap.resize(option_count);
    coefficients = on_heap.data();
  }
  for (std::size_t k = 0; k < option_count; ++k) coefficients[k] = Rule::coefficients(options[k]);
  // The threads' loop is outlined by OpenMP, out of step_slots' reach: flattened too.
  for_each_slot(slots, slot_count, max_threads,
                [&](const Slot<T>& slot, std::int64_t begin, std::int64_t end) FASTDESCENT_FLATTEN {
                  if constexpr (std::is_same_v<T, typename Rule::value_type>) {
                    Rule::run(coefficients[slot.options], begin, end, slot.data);
                  } else {
                    run_widened<Rule>(coefficients[slot.options], slot, begin, end);
                  }
                });
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
