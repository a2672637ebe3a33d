// Gradient transformations: the sum of squares of many tensors (for the global norm), scaling
// and clipping in place, and the exponential moving average of params.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "loop.hpp"
#include "options.hpp"

namespace fastdescent {
inline namespace FASTDESCENT_ARCH {

// Arrays: x. x = x * T(factor).
template <class T>
struct Scale {
  using value_type = T;
  using Options = ScaleOptions;

  struct Coefficients {
    T factor;
  };

  static Coefficients coefficients(const Options& o) { return {T(o.factor)}; }

  static void run(const Coefficients& c, std::int64_t begin, std::int64_t end, T* const* a) {
    T* x = a[0];
    const T factor = c.factor;
    for_range(begin, end, [=](std::int64_t i) { x[i] = x[i] * factor; });
  }
};

// Arrays: x. x = min(max(x, T(lo)), T(hi)); a NaN stays NaN (as numpy.clip, torch.clamp).
template <class T>
struct Clip {
  using value_type = T;
  using Options = ClipOptions;

  struct Coefficients {
    T lo, hi;
  };

  static Coefficients coefficients(const Options& o) { return {T(o.lo), T(o.hi)}; }

  static void run(const Coefficients& c, std::int64_t begin, std::int64_t end, T* const* a) {
    T* x = a[0];
    const T lo = c.lo;
    const T hi = c.hi;
    for_range(begin, end, [=](std::int64_t i) {
      T v = x[i];
      v = v < lo ? lo : v;  // false for NaN: NaN passes through
      v = hi < v ? hi : v;
      x[i] = v;
    });
  }
};

// Arrays: average, param. average = lerp(average, param, 1 - decay) with torch.lerp's formula:
// what torch.optim.swa_utils.get_ema_multi_avg_fn does (torch._foreach_lerp_), equal in exact
// arithmetic to decay * average + (1 - decay) * param (optax.ema without debiasing).
template <class T>
struct EMA {
  using value_type = T;
  using Options = EMAOptions;

  struct Coefficients {
    T weight, complement;  // 1 - decay, and 1 - weight computed in T (as torch)
    bool near_start;       // |weight| < 0.5: computed from the average's end
  };

  static Coefficients coefficients(const Options& o) {
    const T weight = T(1.0 - o.decay);
    return {weight, T(1) - weight, weight < T(0.5) && weight > T(-0.5)};
  }

  static void run(const Coefficients& c, std::int64_t begin, std::int64_t end, T* const* a) {
    with_flags(
        [&](auto near_start) {
          T* average = a[0];
          const T* param = a[1];
          const T weight = c.weight;
          const T complement = c.complement;
          for_range(begin, end, [=](std::int64_t i) {
            const T avg = average[i];
            const T p = param[i];
            if constexpr (near_start) {
              average[i] = avg + weight * (p - avg);
            } else {
              average[i] = p - (p - avg) * complement;
            }
          });
        },
        c.near_start);
  }
};

// sum of x[i]^2 over [0, n), in double.
template <class T>
inline double squares(const T* x, std::int64_t n) {
  double sum = 0;
#if defined(FASTDESCENT_OPENMP)
  // The reduction may be reordered across vector lanes (no -ffast-math needed).
#pragma omp simd reduction(+ : sum)
#endif
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(x[i]);
    sum += v * v;
  }
  return sum;
}

// The sum of squares of every element of every slot's data[0], accumulated in double. Each
// thread's share gets a partial sum; the partials are added in share order, so a result
// depends only on the SIMD level and the number of threads, never on timing.
template <class T>
double sum_of_squares(const Slot<T>* slots, std::size_t count, int max_threads) {
  std::int64_t total = 0;
  for (std::size_t k = 0; k < count; ++k) total += slots[k].size;
  struct alignas(64) Partial {
    double sum = 0;  // one cache line per thread
  };
  std::vector<Partial> partials(static_cast<std::size_t>(threads_for(total, max_threads)));
  for_each_share(slots, count, max_threads,
                 [&](int thread, const Slot<T>& slot, std::int64_t begin, std::int64_t end) {
                   partials[static_cast<std::size_t>(thread)].sum +=
                       squares(slot.data[0] + begin, end - begin);
                 });
  double sum = 0;
  for (const Partial& p : partials) sum += p.sum;
  return sum;
}

}  // namespace FASTDESCENT_ARCH
}  // namespace fastdescent
