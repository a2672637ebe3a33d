// Adam and AdamW, with AMSGrad and maximize (torch.optim.Adam / torch.optim.AdamW).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "loop.hpp"
#include "options.hpp"

namespace fastdescent {
inline namespace FASTDESCENT_ARCH {

// Arrays: param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq (null unless amsgrad).
template <class T>
struct Adam {
  using value_type = T;
  using Options = AdamOptions;

  struct Coefficients {
    T grad_sign, weight_decay, param_decay, one_minus_beta1, beta2, one_minus_beta2, eps;
    T neg_step_size, inv_bias_correction2_sqrt;
    bool coupled_decay, decoupled_decay, amsgrad;
  };

  static Coefficients coefficients(const Options& o) {
    const double bias_correction1 = 1.0 - std::pow(o.beta1, double(o.step));
    const double bias_correction2 = 1.0 - std::pow(o.beta2, double(o.step));
    const bool decay = o.weight_decay != 0;
    return {o.maximize ? T(-1) : T(1),
            T(o.weight_decay),
            T(1.0 - o.lr * o.weight_decay),
            T(1.0 - o.beta1),
            T(o.beta2),
            T(1.0 - o.beta2),
            T(o.eps),
            T(-(o.lr / bias_correction1)),
            T(1.0 / std::sqrt(bias_correction2)),
            decay && !o.decoupled_weight_decay,
            decay && o.decoupled_weight_decay,
            o.amsgrad};
  }

  static void run(const Coefficients& c, std::int64_t begin, std::int64_t end, T* const* a) {
    with_flags(
        [&](auto coupled_decay, auto decoupled_decay, auto amsgrad) {
          T* param = a[0];
          const T* grad = a[1];
          T* exp_avg = a[2];
          T* exp_avg_sq = a[3];
          T* max_exp_avg_sq = a[4];
          const Coefficients k = c;
          for_range(begin, end, [=](std::int64_t i) {
            T g = k.grad_sign * grad[i];
            T p = param[i];
            if constexpr (decoupled_decay) p = p * k.param_decay;
            if constexpr (coupled_decay) g = g + k.weight_decay * p;
            const T m = lerp(exp_avg[i], g, k.one_minus_beta1);
            const T v = exp_avg_sq[i] * k.beta2 + k.one_minus_beta2 * g * g;
            exp_avg[i] = m;
            exp_avg_sq[i] = v;
            T second_moment = v;
            if constexpr (amsgrad) {
              second_moment = std::max(max_exp_avg_sq[i], v);
              max_exp_avg_sq[i] = second_moment;
            }
            // torch divides by sqrt(bias_correction2); multiplying by its reciprocal differs
            // by at most an ulp there and frees the divider, which sqrt and the division
            // below already keep busy (in cache, Adam is bound by that unit).
            const T denom = std::sqrt(second_moment) * k.inv_bias_correction2_sqrt + k.eps;
            param[i] = p + k.neg_step_size * m / denom;
          });
        },
        c.coupled_decay, c.decoupled_decay, c.amsgrad);
  }
};

}  // namespace FASTDESCENT_ARCH
}  // namespace fastdescent
