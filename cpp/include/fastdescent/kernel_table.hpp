// The kernels of one instruction-set variant, as a table of function pointers, and the
// choice of variant at run time: a wheel carries every variant its architecture can use
// and the CPU it lands on decides.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "options.hpp"

namespace fastdescent {

template <class T>
struct KernelSet {
  void (*sgd)(const SGDOptions&, std::int64_t n, T* param, const T* grad, T* momentum_buffer);
  void (*adagrad)(const AdagradOptions&, std::int64_t n, T* param, const T* grad,
                  T* state_sum);
  void (*rmsprop)(const RMSpropOptions&, std::int64_t n, T* param, const T* grad,
                  T* square_avg, T* grad_avg, T* momentum_buffer);
  void (*adam)(const AdamOptions&, std::int64_t n, T* param, const T* grad, T* exp_avg,
               T* exp_avg_sq, T* max_exp_avg_sq);
  bool (*all_finite)(std::int64_t n, const T* values);
  // stream[arrays - 1][written]: the bandwidth probe for that access pattern
  void (*stream[5][6])(std::int64_t n, T* const* arrays);
};

struct KernelTable {
  const char* level;  // "baseline", "avx2", "avx512"
  KernelSet<float> float32;
  KernelSet<double> float64;
};

// The instruction-set levels compiled into this build that this CPU can run, lowest first.
std::vector<std::string> supported_levels();

// The kernels in use: the highest supported level unless select_level chose another.
const KernelTable& active_kernels();

// Use the kernels of `level`; throws std::invalid_argument if it is not supported here.
void select_level(const std::string& level);

template <class T>
const KernelSet<T>& active_set();
template <>
inline const KernelSet<float>& active_set<float>() { return active_kernels().float32; }
template <>
inline const KernelSet<double>& active_set<double>() { return active_kernels().float64; }

}  // namespace fastdescent
