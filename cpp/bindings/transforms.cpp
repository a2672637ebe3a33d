// Python entry points of gradient accumulation and the gradient transformations: one call
// covers a whole list of tensors. Argument names, order, checks and messages are those of the
// numpy and numba backends (fastdescent/backends/lists.py): every argument is checked before
// any memory is written, and the kernels run with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <fastdescent/kernel_table.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "register.hpp"
#include "tensor_list.hpp"

namespace fastdescent::bindings {

namespace {

struct ListArg {
  const char* name;
  py::handle arrays;
  bool writable;
  bool none_ok;  // None entries are skipped (only for single-list kernels)
};

std::string type_name(py::handle value) {
  return py::str(py::type::handle_of(value).attr("__name__"));
}

// Where an array came from: `name` or `name[index]`. Spelled out only for a message.
struct Where {
  const char* name;
  std::size_t index;
  bool listed;  // an element of a list (name[index]) rather than a lone argument

  std::string str() const {
    return listed ? std::string(name) + "[" + std::to_string(index) + "]" : std::string(name);
  }
};

std::string shape_of(py::ssize_t ndim, const py::ssize_t* shape) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < ndim; ++d) {
    if (d > 0) s += ", ";
    s += std::to_string(shape[d]);
  }
  return s + (ndim == 1 ? ",)" : ")");
}

std::string shape_of(const py::array& a) { return shape_of(a.ndim(), a.shape()); }

std::string dtype_name(DType dtype) { return dtype == DType::float32 ? "float32" : "float64"; }

// One array as a kernel takes it (its dtype in `dtype`), or a TypeError / ValueError naming it.
py::array checked_array(const std::string& fn, const Where& where, py::handle item,
                        bool writable, DType& dtype) {
  if (!py::isinstance<py::array>(item)) {
    throw py::type_error(fn + ": " + where.str() + " must be a numpy.ndarray, got " +
                         type_name(item));
  }
  py::array array = py::reinterpret_borrow<py::array>(item);
  const py::dtype kind = array.dtype();
  if (kind.equal(py::dtype::of<float>())) {
    dtype = DType::float32;
  } else if (kind.equal(py::dtype::of<double>())) {
    dtype = DType::float64;
  } else {
    throw py::type_error(fn + ": " + where.str() +
                         " must have dtype float32 or float64 in native byte order, got " +
                         std::string(py::str(kind)));
  }
  if (!(array.flags() & py::array::c_style)) {
    throw py::value_error(fn + ": " + where.str() + " must be C-contiguous");
  }
  if (writable && !array.writeable()) {
    throw py::value_error(fn + ": " + where.str() + " must be writable");
  }
  return array;
}

struct Span {
  std::uintptr_t begin, end;
  bool written;
  std::size_t column;  // the message names the later of two spans (column, then row) first
  Where where;
};

// ValueError when an array that a kernel writes shares memory with any other array.
void check_no_overlap(const std::string& fn, std::vector<Span> spans) {
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin < b.begin; });
  const Span* reach_all = nullptr;      // the span reaching furthest so far
  const Span* reach_written = nullptr;  // the written span reaching furthest so far
  for (const Span& s : spans) {
    const Span* other = nullptr;
    if (reach_written != nullptr && s.begin < reach_written->end) {
      other = reach_written;
    } else if (s.written && reach_all != nullptr && s.begin < reach_all->end) {
      other = reach_all;
    }
    if (other != nullptr) {
      const bool s_first = std::make_pair(s.column, s.where.index) <
                           std::make_pair(other->column, other->where.index);
      const Span& earlier = s_first ? s : *other;
      const Span& later = s_first ? *other : s;
      throw py::value_error(fn + ": " + later.where.str() + " shares memory with " +
                            earlier.where.str() +
                            " (an array written in place must not overlap another)");
    }
    if (reach_all == nullptr || s.end > reach_all->end) reach_all = &s;
    if (s.written && (reach_written == nullptr || s.end > reach_written->end)) {
      reach_written = &s;
    }
  }
}

void add_span(std::vector<Span>& spans, const py::array& a, bool written, std::size_t column,
              const Where& where) {
  const py::ssize_t bytes = a.nbytes();
  if (bytes == 0) return;
  const auto begin = reinterpret_cast<std::uintptr_t>(a.data());
  spans.push_back({begin, begin + static_cast<std::uintptr_t>(bytes), written, column, where});
}

// Lists of arrays aligned row by row (args[0] sets each row's dtype and shape), checked, as
// a TensorBatch of the rows present (rows that are None in a none_ok list are left out).
// Names are spelled out only for an error: the checks cost about 100 ns per array.
TensorBatch check_lists(const char* function, const std::vector<ListArg>& args) {
  const std::string fn = function;
  std::vector<py::sequence> lists;
  for (const ListArg& arg : args) {
    if (!py::isinstance<py::list>(arg.arrays) && !py::isinstance<py::tuple>(arg.arrays)) {
      throw py::type_error(fn + ": " + arg.name + " must be a list or tuple of arrays, got " +
                           type_name(arg.arrays));
    }
    lists.push_back(py::reinterpret_borrow<py::sequence>(arg.arrays));
  }
  const std::size_t rows = lists[0].size();
  for (std::size_t c = 1; c < args.size(); ++c) {
    if (lists[c].size() != rows) {
      throw py::value_error(fn + ": " + args[c].name + " has " + std::to_string(lists[c].size()) +
                            " arrays but " + args[0].name + " has " + std::to_string(rows));
    }
  }
  TensorBatch batch;
  batch.dtypes.reserve(rows);
  batch.sizes.reserve(rows);
  batch.pointers.reserve(rows);
  batch.keep_alive.reserve(rows * args.size());
  std::vector<Span> spans;
  spans.reserve(rows * args.size());
  for (std::size_t r = 0; r < rows; ++r) {
    const py::handle head = PySequence_Fast_GET_ITEM(lists[0].ptr(), r);
    if (head.is_none() && args[0].none_ok) continue;
    std::vector<void*> pointers(args.size(), nullptr);
    DType first_dtype = DType::float64;
    py::ssize_t first_ndim = 0;
    const py::ssize_t* first_shape = nullptr;
    std::int64_t first_size = 0;
    for (std::size_t c = 0; c < args.size(); ++c) {
      const Where where{args[c].name, r, true};
      DType dtype;
      py::array array = checked_array(
          fn, where, c == 0 ? head : PySequence_Fast_GET_ITEM(lists[c].ptr(), r),
          args[c].writable, dtype);
      if (c == 0) {
        first_dtype = dtype;
        first_ndim = array.ndim();
        first_shape = array.shape();
        first_size = static_cast<std::int64_t>(array.size());
      } else if (dtype != first_dtype) {
        throw py::type_error(fn + ": " + where.str() + " has dtype " + dtype_name(dtype) +
                             " but " + Where{args[0].name, r, true}.str() + " has dtype " +
                             dtype_name(first_dtype));
      } else if (array.ndim() != first_ndim ||
                 !std::equal(first_shape, first_shape + first_ndim, array.shape())) {
        throw py::value_error(fn + ": " + where.str() + " has shape " + shape_of(array) +
                              " but " + Where{args[0].name, r, true}.str() + " has shape " +
                              shape_of(first_ndim, first_shape));
      }
      add_span(spans, array, args[c].writable, c, where);
      pointers[c] = const_cast<void*>(array.data());
      batch.keep_alive.push_back(std::move(array));  // first_shape stays valid: a reference
    }
    batch.dtypes.push_back(first_dtype);
    batch.sizes.push_back(first_size);
    batch.pointers.push_back(std::move(pointers));
  }
  check_no_overlap(fn, std::move(spans));
  return batch;
}

// A real number (not a bool); NaN is refused, infinities only when `infinite_ok`.
double real_arg(const std::string& fn, const char* name, py::handle value, bool infinite_ok) {
  if (PyBool_Check(value.ptr()) || PyComplex_Check(value.ptr())) {
    throw py::type_error(fn + ": " + name + " must be a real number, got " + type_name(value));
  }
  const double x = PyFloat_AsDouble(value.ptr());
  if (x == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    throw py::type_error(fn + ": " + name + " must be a real number, got " + type_name(value));
  }
  if (std::isnan(x) || (!infinite_ok && std::isinf(x))) {
    throw py::value_error(fn + ": " + name + " must be " +
                          (infinite_ok ? "a number, not NaN" : "finite") + ", got " +
                          std::string(py::str(py::float_(x))));
  }
  return x;
}

void accumulate(py::object accs, py::object grads, py::object scale) {
  const double s = real_arg("accumulate", "scale", scale, false);
  const TensorBatch batch =
      check_lists("accumulate", {{"accs", accs, true, false}, {"grads", grads, false, false}});
  run_batch(batch, AccumulateOptions{s}, [](const auto& set) { return set.accumulate; });
}

void scale_(py::object arrays, py::object factor) {
  const double f = real_arg("scale_", "factor", factor, false);
  const TensorBatch batch = check_lists("scale_", {{"arrays", arrays, true, true}});
  run_batch(batch, ScaleOptions{f}, [](const auto& set) { return set.scale; });
}

void clip_(py::object arrays, py::object lo, py::object hi) {
  const double low = real_arg("clip_", "lo", lo, true);
  const double high = real_arg("clip_", "hi", hi, true);
  if (low > high) {
    throw py::value_error("clip_: lo must not exceed hi, got lo=" +
                          std::string(py::str(py::float_(low))) +
                          " and hi=" + std::string(py::str(py::float_(high))));
  }
  const TensorBatch batch = check_lists("clip_", {{"arrays", arrays, true, true}});
  run_batch(batch, ClipOptions{low, high}, [](const auto& set) { return set.clip; });
}

void ema_update(py::object averages, py::object params, py::object decay) {
  const double d = real_arg("ema_update", "decay", decay, false);
  if (d < 0.0 || d > 1.0) {
    throw py::value_error("ema_update: decay must be in [0, 1], got " +
                          std::string(py::str(py::float_(d))));
  }
  const TensorBatch batch = check_lists(
      "ema_update", {{"averages", averages, true, false}, {"params", params, false, false}});
  run_batch(batch, EMAOptions{d}, [](const auto& set) { return set.ema; });
}

double sum_of_squares(py::object arrays) {
  const TensorBatch batch = check_lists("sum_of_squares", {{"arrays", arrays, false, true}});
  const std::vector<Slot<float>> f32 = slots_of<float>(batch, DType::float32);
  const std::vector<Slot<double>> f64 = slots_of<double>(batch, DType::float64);
  const int threads = max_threads();
  py::gil_scoped_release release;
  double sum = 0;
  if (!f32.empty()) sum += active_set<float>().sum_of_squares(f32.data(), f32.size(), threads);
  if (!f64.empty()) sum += active_set<double>().sum_of_squares(f64.data(), f64.size(), threads);
  return sum;
}

template <class T>
void run_row_mean(const py::array& matrix, const py::array& out, std::int64_t rows,
                  std::int64_t cols) {
  const T* m = static_cast<const T*>(matrix.data());
  T* o = static_cast<T*>(const_cast<void*>(out.data()));
  const int threads = max_threads();
  py::gil_scoped_release release;
  active_set<T>().row_mean(m, rows, cols, o, threads);
}

void row_mean(py::object matrix_object, py::object out_object) {
  const std::string fn = "row_mean";
  DType dtype, out_dtype;
  const py::array matrix = checked_array(fn, {"matrix", 0, false}, matrix_object, false, dtype);
  const py::array out = checked_array(fn, {"out", 0, false}, out_object, true, out_dtype);
  if (matrix.ndim() < 1) {
    throw py::value_error("row_mean: matrix must have at least one dimension (its rows), "
                          "got a 0-d array");
  }
  const std::int64_t rows = matrix.shape(0);
  if (rows == 0) {
    throw py::value_error("row_mean: matrix has no rows (shape " + shape_of(matrix) +
                          "): the mean of no samples is undefined");
  }
  if (out_dtype != dtype) {
    throw py::type_error("row_mean: out has dtype " + dtype_name(out_dtype) +
                         " but matrix has dtype " + dtype_name(dtype));
  }
  if (out.ndim() + 1 != matrix.ndim() ||
      !std::equal(out.shape(), out.shape() + out.ndim(), matrix.shape() + 1)) {
    throw py::value_error("row_mean: out has shape " + shape_of(out) + " but matrix has shape " +
                          shape_of(matrix) + " (out must have the shape of one row)");
  }
  std::vector<Span> spans;
  add_span(spans, matrix, false, 0, {"matrix", 0, false});
  add_span(spans, out, true, 1, {"out", 0, false});
  check_no_overlap(fn, std::move(spans));
  const std::int64_t cols = static_cast<std::int64_t>(out.size());
  if (cols == 0) return;
  if (dtype == DType::float32) {
    run_row_mean<float>(matrix, out, rows, cols);
  } else {
    run_row_mean<double>(matrix, out, rows, cols);
  }
}

}  // namespace

void register_transforms(py::module_& m) {
  using namespace pybind11::literals;
  m.def("accumulate", &accumulate, "accs"_a, "grads"_a, "scale"_a,
        "acc += scale * grad for each pair of arrays of two aligned lists, in place.");
  m.def("row_mean", &row_mean, "matrix"_a, "out"_a,
        "out = the mean over the rows (first axis) of matrix, rows added in order in double.");
  m.def("sum_of_squares", &sum_of_squares, "arrays"_a,
        "The sum of the squares of every element of every array (None skipped), in double.");
  m.def("scale_", &scale_, "arrays"_a, "factor"_a,
        "x *= factor for every array of a list (None skipped), in place.");
  m.def("clip_", &clip_, "arrays"_a, "lo"_a, "hi"_a,
        "x = min(max(x, lo), hi) for every array of a list (None skipped), in place.");
  m.def("ema_update", &ema_update, "averages"_a, "params"_a, "decay"_a,
        "average = decay * average + (1 - decay) * param (torch.lerp), in place.");
}

}  // namespace fastdescent::bindings
