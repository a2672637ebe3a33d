// Python entry points of the optimizer kernels: one call steps a whole list of tensors.
// Argument names and order are those of the numpy and numba backends. They take float16
// arrays too (computed in float, see loop.hpp's run_widened).
#include <fastdescent/kernel_table.hpp>

#include "register.hpp"
#include "tensor_list.hpp"

namespace fastdescent::bindings {

namespace {

void sgd_step(py::object params, py::object grads, py::object momentum_buffers, double lr,
              double momentum, double dampening, double weight_decay, bool nesterov,
              bool maximize, bool first_step) {
  const SGDOptions options{lr, momentum, dampening, weight_decay, nesterov, maximize, first_step};
  const TensorBatch batch =
      collect("sgd_step", {{"params", params, true, false},
                           {"grads", grads, false, false},
                           {"momentum_buffers", momentum_buffers, true, momentum == 0}},
              true);
  run_batch<true>(batch, options, [](const auto& set) { return set.sgd; });
}

void adagrad_step(py::object params, py::object grads, py::object state_sums, double lr,
                  double lr_decay, double weight_decay, double eps, bool maximize,
                  std::int64_t step) {
  const AdagradOptions options{lr, lr_decay, weight_decay, eps, maximize, step};
  const TensorBatch batch = collect("adagrad_step", {{"params", params, true, false},
                                                     {"grads", grads, false, false},
                                                     {"state_sums", state_sums, true, false}},
                                     true);
  run_batch<true>(batch, options, [](const auto& set) { return set.adagrad; });
}

void rmsprop_step(py::object params, py::object grads, py::object square_avgs,
                  py::object grad_avgs, py::object momentum_buffers, double lr, double alpha,
                  double eps, double weight_decay, double momentum, bool centered,
                  bool maximize) {
  const RMSpropOptions options{lr, alpha, eps, weight_decay, momentum, centered, maximize};
  const TensorBatch batch =
      collect("rmsprop_step", {{"params", params, true, false},
                               {"grads", grads, false, false},
                               {"square_avgs", square_avgs, true, false},
                               {"grad_avgs", grad_avgs, true, !centered},
                               {"momentum_buffers", momentum_buffers, true, !(momentum > 0)}},
                  true);
  run_batch<true>(batch, options, [](const auto& set) { return set.rmsprop; });
}

void adam_step(py::object params, py::object grads, py::object exp_avgs, py::object exp_avg_sqs,
               py::object max_exp_avg_sqs, double lr, double beta1, double beta2, double eps,
               double weight_decay, bool decoupled_weight_decay, bool amsgrad, bool maximize,
               std::int64_t step) {
  const AdamOptions options{lr,           beta1,   beta2,    eps, weight_decay,
                            decoupled_weight_decay, amsgrad, maximize, step};
  const TensorBatch batch =
      collect("adam_step", {{"params", params, true, false},
                            {"grads", grads, false, false},
                            {"exp_avgs", exp_avgs, true, false},
                            {"exp_avg_sqs", exp_avg_sqs, true, false},
                            {"max_exp_avg_sqs", max_exp_avg_sqs, true, !amsgrad}},
              true);
  run_batch<true>(batch, options, [](const auto& set) { return set.adam; });
}

}  // namespace

void register_optimizers(py::module_& m) {
  using namespace pybind11::literals;
  m.def("sgd_step", &sgd_step, "params"_a, "grads"_a, "momentum_buffers"_a, "lr"_a,
        "momentum"_a, "dampening"_a, "weight_decay"_a, "nesterov"_a, "maximize"_a,
        "first_step"_a, "One SGD step over lists of arrays, in place.");
  m.def("adagrad_step", &adagrad_step, "params"_a, "grads"_a, "state_sums"_a, "lr"_a,
        "lr_decay"_a, "weight_decay"_a, "eps"_a, "maximize"_a, "step"_a,
        "One Adagrad step over lists of arrays, in place.");
  m.def("rmsprop_step", &rmsprop_step, "params"_a, "grads"_a, "square_avgs"_a, "grad_avgs"_a,
        "momentum_buffers"_a, "lr"_a, "alpha"_a, "eps"_a, "weight_decay"_a, "momentum"_a,
        "centered"_a, "maximize"_a, "One RMSprop step over lists of arrays, in place.");
  m.def("adam_step", &adam_step, "params"_a, "grads"_a, "exp_avgs"_a, "exp_avg_sqs"_a,
        "max_exp_avg_sqs"_a, "lr"_a, "beta1"_a, "beta2"_a, "eps"_a, "weight_decay"_a,
        "decoupled_weight_decay"_a, "amsgrad"_a, "maximize"_a, "step"_a,
        "One Adam (or AdamW) step over lists of arrays, in place.");
}

}  // namespace fastdescent::bindings
