// What the module was compiled with and how it runs: SIMD level, threads, finiteness scan.
#include <fastdescent/kernel_table.hpp>

#include <pybind11/stl.h>

#include <algorithm>
#include <stdexcept>

#include <string>

#if defined(FASTDESCENT_OPENMP)
#include <omp.h>
#endif

#include "register.hpp"
#include "tensor_list.hpp"

namespace fastdescent::bindings {

namespace {

std::string simd_level() { return active_kernels().level; }

void set_simd_level(const std::string& level) {
  try {
    select_level(level);
  } catch (const std::invalid_argument& error) {
    throw py::value_error(std::string("set_simd_level: ") + error.what());
  }
}

int get_num_threads() { return max_threads(); }

void set_num_threads(int n) {
  if (n < 1) throw py::value_error("set_num_threads: n must be at least 1, got " + std::to_string(n));
#if defined(FASTDESCENT_OPENMP)
  thread_limit().store(n, std::memory_order_relaxed);
  omp_set_num_threads(n);
#endif
}

// Index of the first array holding a NaN or infinity, or -1 when all are finite.
std::int64_t first_nonfinite(py::object arrays) {
  const TensorBatch batch = collect("first_nonfinite", {{"arrays", arrays, false, false}});
  std::vector<std::int64_t> rows_f32, rows_f64;
  for (std::size_t row = 0; row < batch.sizes.size(); ++row) {
    (batch.dtypes[row] == DType::float32 ? rows_f32 : rows_f64).push_back(std::int64_t(row));
  }
  const auto f32 = slots_of<float>(batch, DType::float32);
  const auto f64 = slots_of<double>(batch, DType::float64);
  std::int64_t bad32, bad64;
  {
    py::gil_scoped_release release;
    bad32 = active_set<float>().first_nonfinite(f32.data(), f32.size());
    bad64 = active_set<double>().first_nonfinite(f64.data(), f64.size());
  }
  const std::int64_t a = bad32 < 0 ? -1 : rows_f32[bad32];
  const std::int64_t b = bad64 < 0 ? -1 : rows_f64[bad64];
  return a < 0 ? b : (b < 0 ? a : std::min(a, b));
}

// The bandwidth probe over equally sized arrays: reads all, writes the first `written`;
// with sqrt_div, one square root and one division per element too.
void stream_probe(py::object arrays, int written, bool sqrt_div) {
  py::list list(arrays);
  const std::size_t count = list.size();
  if (count < 1 || count > 5) {
    throw py::value_error("stream_probe: arrays must hold 1 to 5 arrays, got " +
                          std::to_string(count));
  }
  if (written < 0 || static_cast<std::size_t>(written) > count) {
    throw py::value_error("stream_probe: written must be in [0, len(arrays)]");
  }
  // One column per array, so collect() checks they all match the first.
  std::vector<Column> columns;
  for (std::size_t k = 0; k < count; ++k) {
    py::list column;
    column.append(list[k]);
    columns.push_back({"arrays", column, true, false});
  }
  const TensorBatch batch = collect("stream_probe", columns);
  const auto f32 = slots_of<float>(batch, DType::float32);
  const auto f64 = slots_of<double>(batch, DType::float64);
  const int threads = max_threads();
  py::gil_scoped_release release;
  const auto& set32 = active_set<float>();
  const auto& set64 = active_set<double>();
  if (!f32.empty()) {
    (sqrt_div ? set32.stream_sqrt_div : set32.stream)[count - 1][written](f32.data(), 1, threads);
  }
  if (!f64.empty()) {
    (sqrt_div ? set64.stream_sqrt_div : set64.stream)[count - 1][written](f64.data(), 1, threads);
  }
}

}  // namespace

void register_runtime(py::module_& m) {
  using namespace pybind11::literals;
  m.def("simd_level", &simd_level, "The instruction-set level of the kernels in use.");
  m.def("supported_simd_levels", &supported_levels,
        "The instruction-set levels compiled in that this CPU can run, lowest first.");
  m.def("set_simd_level", &set_simd_level, "level"_a,
        "Run the kernels of another supported instruction-set level.");
  m.def("stream_probe", &stream_probe, "arrays"_a, "written"_a, "sqrt_div"_a = false,
        "Bandwidth probe: read every array, write the first `written` in place; with "
        "sqrt_div, one square root and one division per element too.");
  m.def("get_num_threads", &get_num_threads, "Threads a large kernel call may use.");
  m.def("set_num_threads", &set_num_threads, "n"_a, "Set the threads a kernel call may use.");
#if defined(FASTDESCENT_OPENMP)
  m.attr("openmp") = true;
#else
  m.attr("openmp") = false;
#endif
#if defined(__VERSION__)
  m.attr("compiler") = __VERSION__;
#else
  m.attr("compiler") = "unknown";
#endif
  m.def("first_nonfinite", &first_nonfinite, "arrays"_a,
        "Index of the first array holding a NaN or infinity, or -1.");
}

}  // namespace fastdescent::bindings
