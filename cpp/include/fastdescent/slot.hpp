// One tensor of a multi-tensor kernel call: plain data shared by the bindings and every
// instruction-set variant of the kernels.
#pragma once

#include <cstdint>

namespace fastdescent {

// The most arrays a rule touches per element (Adam with AMSGrad: param, grad, exp_avg,
// exp_avg_sq, max_exp_avg_sq).
inline constexpr int kMaxArrays = 5;

// Every rule reads its gradient from data[1] and never writes it; it writes every other
// array it is given.
inline constexpr int kGradArray = 1;

template <class T>
struct Slot {
  std::int64_t size;       // elements
  std::uint32_t options;   // index of this tensor's options in the call's options array
  T* data[kMaxArrays];     // the rule's arrays in its order; unused ones are null
};

}  // namespace fastdescent
