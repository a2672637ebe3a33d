// SGD with momentum, dampening, Nesterov, L2 weight decay and maximize (torch.optim.SGD).
#pragma once

#include <cstdint>

#include "loop.hpp"
#include "options.hpp"

namespace fastdescent {
inline namespace FASTDESCENT_ARCH {

// momentum_buffer may be null when options.momentum == 0.
template <class T>
void sgd_update(const SGDOptions& o, std::int64_t n, T* param, const T* grad,
                T* momentum_buffer) {
  const T grad_sign = o.maximize ? T(-1) : T(1);
  const T weight_decay = T(o.weight_decay);
  const T momentum = T(o.momentum);
  const T grad_scale = T(1.0 - o.dampening);
  const T neg_lr = T(-o.lr);
  with_flags(
      [&](auto decay, auto use_momentum, auto first, auto nesterov) {
        for_each_element(n, [=](std::int64_t i) {
          T g = grad_sign * grad[i];
          if constexpr (decay) g = g + weight_decay * param[i];
          if constexpr (use_momentum) {
            T buf;
            if constexpr (first) {
              buf = g;
            } else {
              buf = momentum_buffer[i] * momentum + grad_scale * g;
            }
            momentum_buffer[i] = buf;
            if constexpr (nesterov) {
              g = g + momentum * buf;
            } else {
              g = buf;
            }
          }
          param[i] = param[i] + neg_lr * g;
        });
      },
      o.weight_decay != 0, o.momentum != 0, o.first_step, o.nesterov);
}

}  // namespace FASTDESCENT_ARCH
}  // namespace fastdescent
