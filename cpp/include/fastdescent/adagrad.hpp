// Adagrad with lr decay, L2 weight decay and maximize (torch.optim.Adagrad).
#pragma once

#include <cmath>
#include <cstdint>

#include "loop.hpp"
#include "options.hpp"

namespace fastdescent {
inline namespace FASTDESCENT_ARCH {

template <class T>
void adagrad_update(const AdagradOptions& o, std::int64_t n, T* param, const T* grad,
                    T* state_sum) {
  const T grad_sign = o.maximize ? T(-1) : T(1);
  const T weight_decay = T(o.weight_decay);
  const T eps = T(o.eps);
  const T neg_clr = T(-(o.lr / (1.0 + double(o.step - 1) * o.lr_decay)));
  with_flags(
      [&](auto decay) {
        for_each_element(n, [=](std::int64_t i) {
          T g = grad_sign * grad[i];
          if constexpr (decay) g = g + weight_decay * param[i];
          const T sum = state_sum[i] + g * g;
          state_sum[i] = sum;
          param[i] = param[i] + neg_clr * g / (std::sqrt(sum) + eps);
        });
      },
      o.weight_decay != 0);
}

}  // namespace FASTDESCENT_ARCH
}  // namespace fastdescent
