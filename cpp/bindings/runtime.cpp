// What the module was compiled with and how it runs: SIMD level, threads, finiteness scan.
#include <fastdescent/finite.hpp>

#include <string>

#if defined(FASTDESCENT_OPENMP)
#include <omp.h>
#endif

#include "register.hpp"
#include "tensor_list.hpp"

namespace fastdescent::bindings {

namespace {

std::string simd_level() {
#if defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
  return "avx2+fma";
#elif defined(__AVX2__)
  return "avx2";
#elif defined(__AVX__)
  return "avx";
#elif defined(__SSE4_2__)
  return "sse4.2";
#elif defined(__SSE2__) || defined(_M_X64)
  return "sse2";
#elif defined(__ARM_NEON)
  return "neon";
#else
  return "scalar";
#endif
}

int get_num_threads() {
#if defined(FASTDESCENT_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) {
  if (n < 1) throw py::value_error("set_num_threads: n must be at least 1, got " + std::to_string(n));
#if defined(FASTDESCENT_OPENMP)
  omp_set_num_threads(n);
#endif
}

// Index of the first array holding a NaN or infinity, or -1 when all are finite.
std::int64_t first_nonfinite(py::object arrays) {
  const TensorBatch batch = collect("first_nonfinite", {{"arrays", arrays, false, false}});
  std::int64_t found = -1;
  {
    py::gil_scoped_release release;
    for (std::size_t row = 0; row < batch.sizes.size() && found < 0; ++row) {
      const void* data = batch.pointers[row][0];
      const bool finite = batch.dtypes[row] == DType::float32
                              ? all_finite(batch.sizes[row], static_cast<const float*>(data))
                              : all_finite(batch.sizes[row], static_cast<const double*>(data));
      if (!finite) found = static_cast<std::int64_t>(row);
    }
  }
  return found;
}

}  // namespace

void register_runtime(py::module_& m) {
  using namespace pybind11::literals;
  m.def("simd_level", &simd_level, "The instruction set the kernels were compiled for.");
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
