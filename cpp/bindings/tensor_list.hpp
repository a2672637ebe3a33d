// Turns the Python lists a kernel call receives (params, grads, state arrays) into raw
// pointers, checking every array before any kernel runs, so a call either runs whole or
// raises without touching memory.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fastdescent::bindings {

namespace py = pybind11;

enum class DType { float32, float64 };

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

// columns[0] is the params column: it sets each row's dtype and size.
TensorBatch collect(const char* function, const std::vector<Column>& columns);

// Runs kernel(T{}, n, pointers) for every row with T the row's element type, the GIL
// released.
template <class Kernel>
void run_rows(const TensorBatch& batch, Kernel&& kernel) {
  py::gil_scoped_release release;
  for (std::size_t row = 0; row < batch.sizes.size(); ++row) {
    void* const* pointers = batch.pointers[row].data();
    if (batch.dtypes[row] == DType::float32) {
      kernel(float{}, batch.sizes[row], pointers);
    } else {
      kernel(double{}, batch.sizes[row], pointers);
    }
  }
}

}  // namespace fastdescent::bindings
