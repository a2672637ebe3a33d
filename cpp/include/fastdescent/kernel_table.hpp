// The kernels of one instruction-set variant, as a table of function pointers, and the
// choice of variant at run time: a wheel carries every variant its architecture can use
// and the CPU it lands on decides.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "float16.hpp"
#include "gradient.hpp"
#include "options.hpp"
#include "slot.hpp"

namespace fastdescent {

// Every kernel steps many tensors in one call: slot k of `slots` is updated with
// options[slots[k].options], using up to `max_threads` threads.
template <class T, class Options>
using StepKernel = void (*)(const Options* options, std::size_t option_count,
                            const Slot<T>* slots, std::size_t slot_count, int max_threads);

template <class T>
struct KernelSet {
  StepKernel<T, SGDOptions> sgd;
  StepKernel<T, AdagradOptions> adagrad;
  StepKernel<T, RMSpropOptions> rmsprop;
  StepKernel<T, AdamOptions> adam;
  // Gradient accumulation and transformations (accumulate.hpp, transforms.hpp).
  StepKernel<T, AccumulateOptions> accumulate;  // data: acc, grad
  StepKernel<T, ScaleOptions> scale;            // data: x
  StepKernel<T, ClipOptions> clip;              // data: x
  StepKernel<T, EMAOptions> ema;                // data: average, param
  // The sum of squares of every slot's data[0], in double.
  double (*sum_of_squares)(const Slot<T>* slots, std::size_t slot_count, int max_threads);
  // out (cols) = the mean over the rows of a C-contiguous (rows, cols) matrix, rows >= 1.
  void (*row_mean)(const T* matrix, std::int64_t rows, std::int64_t cols, T* out,
                   int max_threads);
  // Index of the first slot whose data[0] holds NaN or infinity, or -1.
  std::int64_t (*first_nonfinite)(const Slot<T>* slots, std::size_t slot_count);
  // The epoch loop's gradient over rows in order (gradient.hpp's rows_gradient).
  double (*rows_gradient)(const train::Problem<T>& p, const T* rows, const T* y,
                          std::int64_t count, T* gW, T* gb, T* dz);
  // stream[arrays - 1][written]: the bandwidth probe for that access pattern.
  void (*stream[kMaxArrays][kMaxArrays + 1])(const Slot<T>* slots, std::size_t slot_count,
                                             int max_threads);
  // The same with one square root and one division per element (stream.hpp's SqrtDiv).
  void (*stream_sqrt_div[kMaxArrays][kMaxArrays + 1])(const Slot<T>* slots,
                                                      std::size_t slot_count, int max_threads);
};

// float16 tensors: the optimizer steps, computed in float (loop.hpp's run_widened).
struct Float16KernelSet {
  StepKernel<float16, SGDOptions> sgd;
  StepKernel<float16, AdagradOptions> adagrad;
  StepKernel<float16, RMSpropOptions> rmsprop;
  StepKernel<float16, AdamOptions> adam;
  // Index of the first slot whose data[0] holds NaN or infinity, or -1.
  std::int64_t (*first_nonfinite)(const Slot<float16>* slots, std::size_t slot_count);
};

struct KernelTable {
  const char* level;  // "baseline", "avx2", "avx512"
  KernelSet<float> float32;
  KernelSet<double> float64;
  Float16KernelSet float16;
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
