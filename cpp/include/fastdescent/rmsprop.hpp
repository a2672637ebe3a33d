// RMSprop with momentum, centering, L2 weight decay and maximize (torch.optim.RMSprop).
#pragma once

#include <cmath>
#include <cstdint>

#include "loop.hpp"
#include "options.hpp"

namespace fastdescent {
inline namespace FASTDESCENT_ARCH {

// Arrays: param, grad, square_avg, grad_avg (null unless centered), momentum_buffer (null
// unless momentum > 0).
template <class T>
struct RMSprop {
  using value_type = T;
  using Options = RMSpropOptions;

  struct Coefficients {
    T grad_sign, weight_decay, alpha, one_minus_alpha, eps, momentum, neg_lr;
    bool decay, centered, use_momentum;
  };

  static Coefficients coefficients(const Options& o) {
    return {o.maximize ? T(-1) : T(1), T(o.weight_decay), T(o.alpha), T(1.0 - o.alpha),
            T(o.eps),                  T(o.momentum),     T(-o.lr),   o.weight_decay != 0,
            o.centered,                o.momentum > 0};
  }

  static void run(const Coefficients& c, std::int64_t begin, std::int64_t end, T* const* a) {
    with_flags(
        [&](auto decay, auto centered, auto use_momentum) {
          T* param = a[0];
          const T* grad = a[1];
          T* square_avg = a[2];
          T* grad_avg = a[3];
          T* momentum_buffer = a[4];
          const Coefficients k = c;
          for_range(begin, end, [=](std::int64_t i) {
            T g = k.grad_sign * grad[i];
            if constexpr (decay) g = g + k.weight_decay * param[i];
            const T sq = square_avg[i] * k.alpha + k.one_minus_alpha * g * g;
            square_avg[i] = sq;
            T avg;
            if constexpr (centered) {
              const T mean = lerp(grad_avg[i], g, k.one_minus_alpha);
              grad_avg[i] = mean;
              avg = std::sqrt(sq - mean * mean) + k.eps;
            } else {
              avg = std::sqrt(sq) + k.eps;
            }
            if constexpr (use_momentum) {
              const T buf = momentum_buffer[i] * k.momentum + g / avg;
              momentum_buffer[i] = buf;
              param[i] = param[i] + k.neg_lr * buf;
            } else {
              param[i] = param[i] + k.neg_lr * g / avg;
            }
          });
        },
        c.decay, c.centered, c.use_momentum);
  }
};

}  // namespace FASTDESCENT_ARCH
}  // namespace fastdescent
