// Turns the Python lists a kernel call receives (params, grads, state arrays) into slots,
// checking every array before any kernel runs, so a call either runs whole or raises
// without touching memory.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <fastdescent/kernel_table.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#if defined(FASTDESCENT_OPENMP)
#include <omp.h>
#endif

namespace fastdescent::bindings {

namespace py = pybind11;

// float16 only where the optimizer steps run (plans, the optimizers' list kernels).
enum class DType { float32, float64, float16 };

struct Column {
  const char* name;    // the argument's name, for error messages
  py::object arrays;   // a list or tuple of arrays, or None when optional
  bool writable;
  bool optional;
};

// Row r holds tensor r of every column: its dtype, element count and one pointer per column
// (null for an absent optional column).
struct TensorBatch {
  std::vector<DType> dtypes;
  std::vector<std::int64_t> sizes;
  std::vector<std::vector<void*>> pointers;
  std::vector<py::array> keep_alive;
};

// columns[0] is the params column: it sets each row's dtype and size. float16 arrays are
// refused unless `float16` (the optimizer steps take them; the transformations do not).
TensorBatch collect(const char* function, const std::vector<Column>& columns,
                    bool float16 = false);

// The count set_num_threads stored (0: not set), for every calling thread: OpenMP's own
// setting (omp_set_num_threads) belongs to the thread that made it, and kernels also run on
// Python threads that never called it.
inline std::atomic<int>& thread_limit() {
  static std::atomic<int> limit{0};
  return limit;
}

inline int max_threads() {
#if defined(FASTDESCENT_OPENMP)
  const int limit = thread_limit().load(std::memory_order_relaxed);
  return limit > 0 ? limit : omp_get_max_threads();
#else
  return 1;
#endif
}

// The batch's rows as the slots of one kernel call per dtype (all with options[0]).
template <class T>
std::vector<Slot<T>> slots_of(const TensorBatch& batch, DType dtype) {
  std::vector<Slot<T>> slots;
  for (std::size_t row = 0; row < batch.sizes.size(); ++row) {
    if (batch.dtypes[row] != dtype) continue;
    Slot<T> slot{batch.sizes[row], 0, {}};
    for (std::size_t c = 0; c < batch.pointers[row].size() && c < kMaxArrays; ++c) {
      slot.data[c] = static_cast<T*>(batch.pointers[row][c]);
    }
    slots.push_back(slot);
  }
  return slots;
}

// Runs pick(kernel set) over every row with `options`, one call per dtype, GIL released;
// with Float16, float16 rows too (pick must then also take a Float16KernelSet).
template <bool Float16 = false, class Options, class Pick>
void run_batch(const TensorBatch& batch, const Options& options, Pick pick) {
  const std::vector<Slot<float>> f32 = slots_of<float>(batch, DType::float32);
  const std::vector<Slot<double>> f64 = slots_of<double>(batch, DType::float64);
  std::vector<Slot<float16>> f16;
  if constexpr (Float16) f16 = slots_of<float16>(batch, DType::float16);
  const int threads = max_threads();
  py::gil_scoped_release release;
  if (!f32.empty()) pick(active_set<float>())(&options, 1, f32.data(), f32.size(), threads);
  if (!f64.empty()) pick(active_set<double>())(&options, 1, f64.data(), f64.size(), threads);
  if constexpr (Float16) {
    if (!f16.empty()) {
      pick(active_kernels().float16)(&options, 1, f16.data(), f16.size(), threads);
    }
  }
}

}  // namespace fastdescent::bindings
