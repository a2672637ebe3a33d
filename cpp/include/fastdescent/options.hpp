// The options of each update rule: plain data shared by every compiled instruction-set
// variant of the kernels and by the bindings.
#pragma once

#include <cstdint>

namespace fastdescent {

struct SGDOptions {
  double lr;
  double momentum;
  double dampening;
  double weight_decay;
  bool nesterov;
  bool maximize;
  // The momentum buffer starts as the first gradient, without dampening, as in torch.
  bool first_step;
};

struct AdagradOptions {
  double lr;
  double lr_decay;
  double weight_decay;
  double eps;
  bool maximize;
  std::int64_t step;  // this step's number, from 1
};

struct RMSpropOptions {
  double lr;
  double alpha;
  double eps;
  double weight_decay;
  double momentum;
  bool centered;
  bool maximize;
};

struct AdamOptions {
  double lr;
  double beta1;
  double beta2;
  double eps;
  double weight_decay;
  bool decoupled_weight_decay;  // AdamW: p *= 1 - lr * weight_decay before the update
  bool amsgrad;
  bool maximize;
  std::int64_t step;  // this step's number, from 1
};

// Gradient accumulation and transformations (accumulate.hpp, transforms.hpp).

struct AccumulateOptions {
  double scale;  // acc += scale * grad
};

struct ScaleOptions {
  double factor;  // x *= factor
};

struct ClipOptions {
  double lo, hi;  // x = min(max(x, lo), hi)
};

struct EMAOptions {
  double decay;  // avg = decay * avg + (1 - decay) * param, as torch.lerp(avg, param, 1 - decay)
};

}  // namespace fastdescent
