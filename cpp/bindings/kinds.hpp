// What differs between the optimizer kinds, as seen by the bindings that step them (plans,
// native training loops): the options and how they are read from Python, the state
// columns, the kernel, and how a tensor's step number enters the options.
#pragma once

#include <pybind11/pybind11.h>

#include <fastdescent/kernel_table.hpp>

#include <cstdint>
#include <iterator>

namespace fastdescent::bindings {

namespace py = pybind11;

struct SGDTraits {
  using Options = SGDOptions;
  static constexpr const char* columns[] = {"momentum_buffer"};
  static Options read(const py::dict& d) {
    return {d["lr"].cast<double>(), d["momentum"].cast<double>(), d["dampening"].cast<double>(),
            d["weight_decay"].cast<double>(), d["nesterov"].cast<bool>(),
            d["maximize"].cast<bool>(), false};
  }
  template <class T>
  static auto kernel(const KernelSet<T>& set) { return set.sgd; }
  static auto kernel(const Float16KernelSet& set) { return set.sgd; }
  static std::int64_t step_key(std::int64_t step) { return step == 1 ? 1 : 2; }
  static void set_step(Options& o, std::int64_t step) { o.first_step = step == 1; }
  static bool requires_column(const Options& o, int) { return o.momentum != 0; }
  static void set_lr(Options& o, double lr) { o.lr = lr; }
};

struct AdagradTraits {
  using Options = AdagradOptions;
  static constexpr const char* columns[] = {"sum"};
  static Options read(const py::dict& d) {
    return {d["lr"].cast<double>(), d["lr_decay"].cast<double>(),
            d["weight_decay"].cast<double>(), d["eps"].cast<double>(),
            d["maximize"].cast<bool>(), 1};
  }
  template <class T>
  static auto kernel(const KernelSet<T>& set) { return set.adagrad; }
  static auto kernel(const Float16KernelSet& set) { return set.adagrad; }
  static std::int64_t step_key(std::int64_t step) { return step; }
  static void set_step(Options& o, std::int64_t step) { o.step = step; }
  static bool requires_column(const Options&, int) { return true; }
  static void set_lr(Options& o, double lr) { o.lr = lr; }
};

struct RMSpropTraits {
  using Options = RMSpropOptions;
  static constexpr const char* columns[] = {"square_avg", "grad_avg", "momentum_buffer"};
  static Options read(const py::dict& d) {
    return {d["lr"].cast<double>(), d["alpha"].cast<double>(), d["eps"].cast<double>(),
            d["weight_decay"].cast<double>(), d["momentum"].cast<double>(),
            d["centered"].cast<bool>(), d["maximize"].cast<bool>()};
  }
  template <class T>
  static auto kernel(const KernelSet<T>& set) { return set.rmsprop; }
  static auto kernel(const Float16KernelSet& set) { return set.rmsprop; }
  static std::int64_t step_key(std::int64_t) { return 0; }
  static void set_step(Options&, std::int64_t) {}
  static bool requires_column(const Options& o, int column) {
    return column == 0 || (column == 1 && o.centered) || (column == 2 && o.momentum > 0);
  }
  static void set_lr(Options& o, double lr) { o.lr = lr; }
};

struct AdamTraits {
  using Options = AdamOptions;
  static constexpr const char* columns[] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  static Options read(const py::dict& d) {
    return {d["lr"].cast<double>(), d["beta1"].cast<double>(), d["beta2"].cast<double>(),
            d["eps"].cast<double>(), d["weight_decay"].cast<double>(),
            d["decoupled_weight_decay"].cast<bool>(), d["amsgrad"].cast<bool>(),
            d["maximize"].cast<bool>(), 1};
  }
  template <class T>
  static auto kernel(const KernelSet<T>& set) { return set.adam; }
  static auto kernel(const Float16KernelSet& set) { return set.adam; }
  static std::int64_t step_key(std::int64_t step) { return step; }
  static void set_step(Options& o, std::int64_t step) { o.step = step; }
  static bool requires_column(const Options& o, int column) { return column < 2 || o.amsgrad; }
  static void set_lr(Options& o, double lr) { o.lr = lr; }
};

}  // namespace fastdescent::bindings
