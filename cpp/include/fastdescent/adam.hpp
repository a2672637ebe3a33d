// Adam and AdamW, with AMSGrad and maximize (torch.optim.Adam / torch.optim.AdamW).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "loop.hpp"
#include "options.hpp"

namespace fastdescent {
inline namespace FASTDESCENT_ARCH {

// max_exp_avg_sq may be null unless amsgrad.
template <class T>
void adam_update(const AdamOptions& o, std::int64_t n, T* param, const T* grad, T* exp_avg,
                 T* exp_avg_sq, T* max_exp_avg_sq) {
  const double bias_correction1 = 1.0 - std::pow(o.beta1, double(o.step));
  const double bias_correction2 = 1.0 - std::pow(o.beta2, double(o.step));
  const T grad_sign = o.maximize ? T(-1) : T(1);
  const T weight_decay = T(o.weight_decay);
  const T param_decay = T(1.0 - o.lr * o.weight_decay);
  const T one_minus_beta1 = T(1.0 - o.beta1);
  const T beta2 = T(o.beta2);
  const T one_minus_beta2 = T(1.0 - o.beta2);
  const T eps = T(o.eps);
  const T neg_step_size = T(-(o.lr / bias_correction1));
  const T bias_correction2_sqrt = T(std::sqrt(bias_correction2));
  const bool has_decay = o.weight_decay != 0;
  with_flags(
      [&](auto coupled_decay, auto decoupled_decay, auto amsgrad) {
        for_each_element(n, [=](std::int64_t i) {
          T g = grad_sign * grad[i];
          T p = param[i];
          if constexpr (decoupled_decay) p = p * param_decay;
          if constexpr (coupled_decay) g = g + weight_decay * p;
          const T m = lerp(exp_avg[i], g, one_minus_beta1);
          const T v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g;
          exp_avg[i] = m;
          exp_avg_sq[i] = v;
          T second_moment = v;
          if constexpr (amsgrad) {
            second_moment = std::max(max_exp_avg_sq[i], v);
            max_exp_avg_sq[i] = second_moment;
          }
          const T denom = std::sqrt(second_moment) / bias_correction2_sqrt + eps;
          param[i] = p + neg_step_size * m / denom;
        });
      },
      has_decay && !o.decoupled_weight_decay, has_decay && o.decoupled_weight_decay,
      o.amsgrad);
}

}  // namespace FASTDESCENT_ARCH
}  // namespace fastdescent
