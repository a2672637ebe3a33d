// SGD with momentum, dampening, Nesterov, L2 weight decay and maximize (torch.optim.SGD).
#pragma once

#include <cstdint>

#include "loop.hpp"
#include "options.hpp"

namespace fastdescent {
inline namespace FASTDESCENT_ARCH {

// Arrays: param, grad, momentum_buffer (null when momentum == 0).
template <class T>
struct SGD {
  using value_type = T;
  using Options = SGDOptions;

  struct Coefficients {
    T grad_sign, weight_decay, momentum, grad_scale, neg_lr;
    bool decay, use_momentum, first_step, nesterov;
  };

  static Coefficients coefficients(const Options& o) {
    return {o.maximize ? T(-1) : T(1), T(o.weight_decay), T(o.momentum),
            T(1.0 - o.dampening),      T(-o.lr),           o.weight_decay != 0,
            o.momentum != 0,           o.first_step,       o.nesterov};
  }

  static void run(const Coefficients& c, std::int64_t begin, std::int64_t end, T* const* a) {
    with_flags(
        [&](auto decay, auto use_momentum, auto first, auto nesterov) {
          T* param = a[0];
          const T* grad = a[1];
          T* momentum_buffer = a[2];
          const Coefficients k = c;
          for_range(begin, end, [=](std::int64_t i) {
            T g = k.grad_sign * grad[i];
            if constexpr (decay) g = g + k.weight_decay * param[i];
            if constexpr (use_momentum) {
              T buf;
              if constexpr (first) {
                buf = g;  // the buffer starts as the first gradient, undamped
              } else {
                buf = momentum_buffer[i] * k.momentum + k.grad_scale * g;
              }
              momentum_buffer[i] = buf;
              if constexpr (nesterov) {
                g = g + k.momentum * buf;
              } else {
                g = buf;
              }
            }
            param[i] = param[i] + k.neg_lr * g;
          });
        },
        c.decay, c.use_momentum, c.first_step, c.nesterov);
  }
};

}  // namespace FASTDESCENT_ARCH
}  // namespace fastdescent
