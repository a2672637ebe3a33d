// Adagrad with lr decay, L2 weight decay and maximize (torch.optim.Adagrad).
#pragma once

#include <cmath>
#include <cstdint>

#include "loop.hpp"
#include "options.hpp"

namespace fastdescent {
inline namespace FASTDESCENT_ARCH {

// Arrays: param, grad, state_sum.
template <class T>
struct Adagrad {
  using value_type = T;
  using Options = AdagradOptions;

  struct Coefficients {
    T grad_sign, weight_decay, eps, neg_clr;
    bool decay;
  };

  static Coefficients coefficients(const Options& o) {
    const double clr = o.lr / (1.0 + double(o.step - 1) * o.lr_decay);
    return {o.maximize ? T(-1) : T(1), T(o.weight_decay), T(o.eps), T(-clr),
            o.weight_decay != 0};
  }

  static void run(const Coefficients& c, std::int64_t begin, std::int64_t end, T* const* a) {
    with_flags(
        [&](auto decay) {
          T* param = a[0];
          const T* grad = a[1];
          T* state_sum = a[2];
          const Coefficients k = c;
          for_range(begin, end, [=](std::int64_t i) {
            T g = k.grad_sign * grad[i];
            if constexpr (decay) g = g + k.weight_decay * param[i];
            const T sum = state_sum[i] + g * g;
            state_sum[i] = sum;
            param[i] = param[i] + k.neg_clr * g / (std::sqrt(sum) + k.eps);
          });
        },
        c.decay);
  }
};

}  // namespace FASTDESCENT_ARCH
}  // namespace fastdescent
