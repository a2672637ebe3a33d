// fastdescent._core: registers the parts of the compiled module, nothing else.
#include "register.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastdescent's compiled kernels (see the fastdescent package for the API)";
  fastdescent::bindings::register_optimizers(m);
  fastdescent::bindings::register_runtime(m);
  fastdescent::bindings::register_plans(m);
  fastdescent::bindings::register_transforms(m);
  fastdescent::bindings::register_training(m);
}
