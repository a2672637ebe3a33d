// RMSprop with momentum, centering, L2 weight decay and maximize (torch.optim.RMSprop).
#pragma once

#include <cmath>
#include <cstdint>

#include "loop.hpp"
#include "options.hpp"

namespace fastdescent {
inline namespace FASTDESCENT_ARCH {

// grad_avg may be null unless centered; momentum_buffer may be null when momentum == 0.
template <class T>
void rmsprop_update(const RMSpropOptions& o, std::int64_t n, T* param, const T* grad,
                    T* square_avg, T* grad_avg, T* momentum_buffer) {
  const T grad_sign = o.maximize ? T(-1) : T(1);
  const T weight_decay = T(o.weight_decay);
  const T alpha = T(o.alpha);
  const T one_minus_alpha = T(1.0 - o.alpha);
  const T eps = T(o.eps);
  const T momentum = T(o.momentum);
  const T neg_lr = T(-o.lr);
  with_flags(
      [&](auto decay, auto centered, auto use_momentum) {
        for_each_element(n, [=](std::int64_t i) {
          T g = grad_sign * grad[i];
          if constexpr (decay) g = g + weight_decay * param[i];
          const T sq = square_avg[i] * alpha + one_minus_alpha * g * g;
          square_avg[i] = sq;
          T avg;
          if constexpr (centered) {
            const T mean = lerp(grad_avg[i], g, one_minus_alpha);
            grad_avg[i] = mean;
            avg = std::sqrt(sq - mean * mean) + eps;
          } else {
            avg = std::sqrt(sq) + eps;
          }
          if constexpr (use_momentum) {
            const T buf = momentum_buffer[i] * momentum + g / avg;
            momentum_buffer[i] = buf;
            param[i] = param[i] + neg_lr * buf;
          } else {
            param[i] = param[i] + neg_lr * g / avg;
          }
        });
      },
      o.weight_decay != 0, o.centered, o.momentum > 0);
}

}  // namespace FASTDESCENT_ARCH
}  // namespace fastdescent
