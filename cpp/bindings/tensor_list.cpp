#include "tensor_list.hpp"

namespace fastdescent::bindings {

namespace {

std::string where(const char* function, const char* column, std::size_t index) {
  return std::string(function) + ": " + column + "[" + std::to_string(index) + "]";
}

py::sequence as_sequence(const char* function, const Column& column) {
  if (!py::isinstance<py::list>(column.arrays) && !py::isinstance<py::tuple>(column.arrays)) {
    throw py::type_error(std::string(function) + ": " + column.name +
                         " must be a list or tuple of arrays");
  }
  return py::reinterpret_borrow<py::sequence>(column.arrays);
}

DType dtype_of(const char* function, const char* column, std::size_t index,
               const py::array& array, bool float16) {
  constexpr int kNpyHalf = 23;  // NumPy's type number of float16
  if (array.dtype().equal(py::dtype::of<float>())) return DType::float32;
  if (array.dtype().equal(py::dtype::of<double>())) return DType::float64;
  if (float16 && array.dtype().equal(py::dtype(kNpyHalf))) return DType::float16;
  throw py::type_error(where(function, column, index) + " must have dtype " +
                       (float16 ? "float16, float32 or float64" : "float32 or float64") +
                       " in native byte order, not " + std::string(py::str(array.dtype())));
}

}  // namespace

TensorBatch collect(const char* function, const std::vector<Column>& columns, bool float16) {
  TensorBatch batch;
  const py::sequence params = as_sequence(function, columns.at(0));
  const std::size_t rows = params.size();
  batch.dtypes.resize(rows);
  batch.sizes.resize(rows);
  batch.pointers.assign(rows, std::vector<void*>(columns.size(), nullptr));

  for (std::size_t c = 0; c < columns.size(); ++c) {
    const Column& column = columns[c];
    if (column.arrays.is_none()) {
      if (!column.optional) {
        throw py::type_error(std::string(function) + ": " + column.name + " must not be None");
      }
      continue;
    }
    const py::sequence arrays = as_sequence(function, column);
    if (arrays.size() != rows) {
      throw py::value_error(std::string(function) + ": " + column.name + " has " +
                            std::to_string(arrays.size()) + " arrays but " +
                            columns[0].name + " has " + std::to_string(rows));
    }
    for (std::size_t r = 0; r < rows; ++r) {
      const py::object item = arrays[r];
      if (!py::isinstance<py::array>(item)) {
        throw py::type_error(where(function, column.name, r) + " must be a numpy.ndarray");
      }
      py::array array = py::reinterpret_borrow<py::array>(item);
      const DType dtype = dtype_of(function, column.name, r, array, float16);
      if (!(array.flags() & py::array::c_style)) {
        throw py::value_error(where(function, column.name, r) + " must be C-contiguous");
      }
      if (column.writable && !array.writeable()) {
        throw py::value_error(where(function, column.name, r) + " must be writable");
      }
      const std::int64_t size = static_cast<std::int64_t>(array.size());
      if (c == 0) {
        batch.dtypes[r] = dtype;
        batch.sizes[r] = size;
      } else if (dtype != batch.dtypes[r]) {
        throw py::type_error(where(function, column.name, r) + " has dtype " +
                             std::string(py::str(array.dtype())) + " but " + columns[0].name +
                             "[" + std::to_string(r) + "] does not");
      } else if (size != batch.sizes[r]) {
        throw py::value_error(where(function, column.name, r) + " has " +
                              std::to_string(size) + " elements but " + columns[0].name + "[" +
                              std::to_string(r) + "] has " + std::to_string(batch.sizes[r]));
      }
      batch.pointers[r][c] = const_cast<void*>(array.data());
      batch.keep_alive.push_back(std::move(array));
    }
  }
  return batch;
}

}  // namespace fastdescent::bindings
