// Each file of the bindings registers one part of the module.
#pragma once

#include <pybind11/pybind11.h>

namespace fastdescent::bindings {

void register_optimizers(pybind11::module_& m);
void register_runtime(pybind11::module_& m);
void register_plans(pybind11::module_& m);
void register_transforms(pybind11::module_& m);
void register_training(pybind11::module_& m);

}  // namespace fastdescent::bindings
