// fastdescent._core.fit_linear: the epoch loop of fastdescent.models, run natively. The
// model hands over its data, its weights and intercept, and the state arrays, step counts
// and kernel options of its fastdescent optimizer; with the GIL released, every mini-batch's
// gradient (train.hpp) is followed by the optimizer's own kernel from the active kernel
// table, so the update rules are exactly those of opt.step().
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <fastdescent/kernel_table.hpp>
#include <fastdescent/train.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kinds.hpp"
#include "register.hpp"
#include "tensor_list.hpp"

namespace fastdescent::bindings {

namespace py = pybind11;

namespace {

template <class T>
py::array_t<T, py::array::c_style> checked(py::handle object, const char* name,
                                           bool writable) {
  if (!py::isinstance<py::array_t<T>>(object)) {
    throw py::type_error(std::string(name) + " must be a numpy.ndarray of the model's dtype");
  }
  auto a = py::reinterpret_borrow<py::array>(object);
  if (!(a.flags() & py::array::c_style)) {
    throw py::value_error(std::string(name) + " must be C-contiguous");
  }
  if (writable && !a.writeable()) throw py::value_error(std::string(name) + " must be writable");
  return py::array_t<T, py::array::c_style>(a);
}

template <class Kind>
constexpr int kColumns = static_cast<int>(std::size(Kind::columns));

// The rows in their stored order, every epoch (shuffle=False).
template <class T>
struct StoredOrder {
  const T* y;
  train::Rows<std::uint32_t, T> rows(std::int64_t) const { return {nullptr, y}; }
  void release(std::int64_t) const {}
};

struct Settings {
  train::Loss loss;
  int k;
  double alpha;
  std::int64_t batch_size, epochs, first_epoch;
  bool shuffle;
  std::uint64_t seed;
  int threads;
  bool check_finite;
};

// Whether X's n * f values are all finite, by the kernel table's scan.
template <class T>
bool all_finite(const T* X, std::int64_t count) {
  Slot<T> slot{count, 0, {}};
  slot.data[0] = const_cast<T*>(X);  // read only
  return active_set<T>().first_nonfinite(&slot, 1) < 0;
}

template <class Kind, class T>
py::array_t<double> fit_typed(py::array X_in, py::array y_in, py::list params, py::list state,
                              py::array_t<std::int64_t, py::array::c_style> steps,
                              const py::dict& options_dict, const Settings& s,
                              py::object lrs_in) {
  auto X = checked<T>(X_in, "X", false);
  auto y = checked<T>(y_in, "y", false);
  if (X.ndim() != 2) throw py::value_error("X must be 2-D");
  const std::int64_t n = X.shape(0), f = X.shape(1);
  if (y.ndim() != 1 || y.shape(0) != n) throw py::value_error("y must be 1-D with one entry per row of X");
  if (params.size() != 2) throw py::value_error("params must be [W, b]");
  auto W = checked<T>(params[0], "W", true);
  auto b = checked<T>(params[1], "b", true);
  if (W.size() != s.k * f || b.size() != s.k) throw py::value_error("W must have k * f elements and b k elements");
  if (steps.size() != 2 || !steps.writeable()) throw py::value_error("steps must be a writable int64 array of 2 entries");
  if (static_cast<int>(state.size()) != kColumns<Kind>) throw py::value_error("state must hold one entry per state column");
  const double* lrs = nullptr;
  py::array_t<double, py::array::c_style> lr_array;
  if (!lrs_in.is_none()) {
    lr_array = py::array_t<double, py::array::c_style>::ensure(lrs_in);
    if (!lr_array) throw py::type_error("lrs must be a float64 array");
    lrs = lr_array.data();
  }
  const std::int64_t batches = s.batch_size > 0 ? (n + s.batch_size - 1) / s.batch_size : 0;
  if (lrs && lr_array.size() != batches * s.epochs) throw py::value_error("lrs must hold one lr per mini-batch");
  if (n == 0 || s.batch_size < 1 || s.k < 1) throw py::value_error("empty data or bad batch size");

  std::vector<T> gW(static_cast<std::size_t>(s.k * f)), gb(static_cast<std::size_t>(s.k));
  Slot<T> slots[2] = {{s.k * f, 0, {}}, {s.k, 1, {}}};
  slots[0].data[0] = W.mutable_data();
  slots[0].data[1] = gW.data();
  slots[1].data[0] = b.mutable_data();
  slots[1].data[1] = gb.data();
  std::vector<py::array_t<T, py::array::c_style>> keep;
  for (int c = 0; c < kColumns<Kind>; ++c) {
    py::object column = state[c];
    if (column.is_none()) continue;
    py::list arrays = column.cast<py::list>();
    if (arrays.size() != 2) throw py::value_error("each state column must hold two entries");
    for (int i = 0; i < 2; ++i) {
      if (arrays[i].is_none()) continue;
      auto a = checked<T>(arrays[i], "a state array", true);
      if (a.size() != slots[i].size) throw py::value_error("state arrays must match their params");
      slots[i].data[2 + c] = a.mutable_data();
      keep.push_back(a);
    }
  }
  const typename Kind::Options base = Kind::read(options_dict);
  std::int64_t* step_counts = steps.mutable_data();
  const T* Xd = X.data();
  const T* yd = y.data();

  train::Problem<T> p;
  p.X = Xd;
  p.n = n;
  p.f = f;
  p.k = s.k;
  p.loss = s.loss;
  p.alpha = s.alpha;
  p.W = W.mutable_data();
  p.b = b.mutable_data();
  p.gW = gW.data();
  p.gb = gb.data();

  py::array_t<double> losses(s.epochs);
  double* loss_out = losses.mutable_data();
  const auto kernel = Kind::template kernel<T>(active_set<T>());
  const auto rows_gradient = active_set<T>().rows_gradient;
  {
    py::gil_scoped_release release;
    typename Kind::Options options[2] = {base, base};
    auto run_epochs = [&](auto&& orders) {
      // While the helper draws the first epoch's order: NaN or infinity in X stops the fit
      // before anything is changed.
      if (s.check_finite && !all_finite(Xd, n * f)) {
        throw py::value_error("X holds NaN or infinity");
      }
      for (std::int64_t e = 0; e < s.epochs; ++e) {
        const double* epoch_lrs = lrs ? lrs + e * batches : nullptr;
        loss_out[e] = train::run_epoch(p, orders.rows(e), s.batch_size, s.threads, rows_gradient,
                                      [&](std::int64_t batch) {
          for (int i = 0; i < 2; ++i) {
            options[i] = base;
            if (epoch_lrs) options[i].lr = epoch_lrs[batch];
            Kind::set_step(options[i], step_counts[i] + 1);
          }
          kernel(options, 2, slots, 2, 1);
          ++step_counts[0];
          ++step_counts[1];
        });
        orders.release(e);
      }
    };
    // Shuffled orders are drawn on a second thread ahead of the epochs that read them, and
    // the rows the loop reads next warmed in the caches, when fd.set_num_threads allows two;
    // below a few thousand rows a thread costs more than the drawing.
    const bool background = n >= (1 << 16) && max_threads() >= 2;
    if (!s.shuffle) {
      run_epochs(StoredOrder<T>{yd});
    } else if (n <= std::int64_t(std::numeric_limits<std::uint32_t>::max())) {
      run_epochs(train::EpochOrders<std::uint32_t, T>(yd, n, s.seed, s.first_epoch, s.epochs,
                                                      background, Xd, f));
    } else {
      run_epochs(train::EpochOrders<std::int64_t, T>(yd, n, s.seed, s.first_epoch, s.epochs,
                                                     background, Xd, f));
    }
  }
  return losses;
}

template <class Kind>
py::array_t<double> fit_kind(py::array X, py::array y, py::list params, py::list state,
                             py::array_t<std::int64_t, py::array::c_style> steps,
                             const py::dict& options, const Settings& s, py::object lrs) {
  if (X.dtype().equal(py::dtype::of<float>())) {
    return fit_typed<Kind, float>(X, y, params, state, steps, options, s, lrs);
  }
  if (X.dtype().equal(py::dtype::of<double>())) {
    return fit_typed<Kind, double>(X, y, params, state, steps, options, s, lrs);
  }
  throw py::type_error("X must have dtype float32 or float64");
}

}  // namespace

void register_training(py::module_& m) {
  using namespace pybind11::literals;
  m.def(
      "fit_linear",
      [](const std::string& kind, py::array X, py::array y, py::list params, py::list state,
         py::array_t<std::int64_t, py::array::c_style> steps, py::dict options,
         const std::string& loss, int k, double alpha, std::int64_t batch_size,
         std::int64_t epochs, std::int64_t first_epoch, bool shuffle, std::uint64_t seed,
         int threads, py::object lrs, bool check_finite) {
        Settings s{};
        if (loss == "squared") s.loss = train::Loss::squared;
        else if (loss == "logistic") s.loss = train::Loss::logistic;
        else if (loss == "softmax") s.loss = train::Loss::softmax;
        else throw py::value_error("loss must be squared, logistic or softmax");
        s.k = k;
        s.alpha = alpha;
        s.batch_size = batch_size;
        s.epochs = epochs;
        s.first_epoch = first_epoch;
        s.shuffle = shuffle;
        s.seed = seed;
        s.threads = threads;
        s.check_finite = check_finite;
        if (epochs < 0) throw py::value_error("epochs must be >= 0");
        if (kind == "sgd") return fit_kind<SGDTraits>(X, y, params, state, steps, options, s, lrs);
        if (kind == "adagrad") return fit_kind<AdagradTraits>(X, y, params, state, steps, options, s, lrs);
        if (kind == "rmsprop") return fit_kind<RMSpropTraits>(X, y, params, state, steps, options, s, lrs);
        if (kind == "adam") return fit_kind<AdamTraits>(X, y, params, state, steps, options, s, lrs);
        throw py::value_error("unknown optimizer kind " + kind);
      },
      "kind"_a, "X"_a, "y"_a, "params"_a, "state"_a, "steps"_a, "options"_a, "loss"_a, "k"_a,
      "alpha"_a, "batch_size"_a, "epochs"_a, "first_epoch"_a, "shuffle"_a, "seed"_a,
      "threads"_a = 1, "lrs"_a = py::none(), "check_finite"_a = false,
      "Run `epochs` epochs of mini-batch descent on a linear model with an optimizer's kernel "
      "(see fastdescent.models); returns the mean loss of each epoch. With check_finite, "
      "first raises ValueError if X holds NaN or infinity (nothing is changed then).");
  m.def(
      "permutation",
      [](std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
        if (n < 0 || n > std::int64_t(std::numeric_limits<std::uint32_t>::max())) throw py::value_error("n out of range");
        py::array_t<std::uint32_t> order(n);
        std::uint32_t* data = order.mutable_data();
        {
          py::gil_scoped_release release;
          train::shuffled_order(data, n, seed, epoch);
        }
        return order;
      },
      "n"_a, "seed"_a, "epoch"_a, "The shuffled order fit_linear uses for (seed, epoch).");
}

}  // namespace fastdescent::bindings
