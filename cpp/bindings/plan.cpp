// Step plans: an optimizer's tensors (params and state arrays) bound once, so that a step
// is one call from Python that checks the gradients and runs every group's kernel over
// every tensor in one pass. The plan knows the arrays and the options of each group, not
// the math: the kernels do that.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <fastdescent/kernel_table.hpp>
#include <fastdescent/prefetch.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kinds.hpp"
#include "register.hpp"
#include "step_lock.hpp"
#include "tensor_list.hpp"

namespace fastdescent::bindings {

namespace {

// NumPy's type number of float16 (NPY_HALF; pybind11 names only float and double's).
constexpr int kNpyHalf = 23;

DType dtype_of(const py::array& a) {
  if (a.dtype().equal(py::dtype::of<float>())) return DType::float32;
  return a.dtype().equal(py::dtype::of<double>()) ? DType::float64 : DType::float16;
}

bool is_float_array(const py::array& a) {
  const py::dtype dtype = a.dtype();
  return dtype.equal(py::dtype::of<float>()) || dtype.equal(py::dtype::of<double>()) ||
         dtype.equal(py::dtype(kNpyHalf));
}

int type_num_of(DType dtype) {
  switch (dtype) {
    case DType::float32: return py::detail::npy_api::NPY_FLOAT_;
    case DType::float64: return py::detail::npy_api::NPY_DOUBLE_;
    default: return kNpyHalf;
  }
}

std::size_t itemsize_of(DType dtype) {
  switch (dtype) {
    case DType::float32: return sizeof(float);
    case DType::float64: return sizeof(double);
    default: return sizeof(float16);
  }
}

std::string type_name(py::handle object) {
  return py::str(py::type::handle_of(object).attr("__name__"));
}

std::string index_name(const char* what, std::size_t i) {
  return std::string(what) + "[" + std::to_string(i) + "]";
}

#if defined(__GNUC__)
#define FASTDESCENT_COLD __attribute__((cold, noinline))
#else
#define FASTDESCENT_COLD
#endif

// A dtype's byte order character when it is not this machine's ('=' and '|' are native).
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
constexpr char kForeignByteOrder = '<';
#else
constexpr char kForeignByteOrder = '>';
#endif

// Steps over fewer elements keep the GIL (see step()).
constexpr std::int64_t kReleaseGilElements = std::int64_t{1} << 14;

// A free address interval [lo, hi): no param or state array has a byte in it.
struct Gap {
  std::uintptr_t lo, hi;
};

struct Span {
  std::uintptr_t begin, end;
  std::size_t tensor;
  int column;  // -1 for the param, else a state column
};

template <class Traits>
class StepPlan {
 public:
  using Options = typename Traits::Options;
  static constexpr int kColumns = static_cast<int>(std::size(Traits::columns));

  StepPlan(py::sequence params, py::sequence state, py::sequence groups,
           py::array_t<std::int64_t, py::array::c_style> steps, std::size_t group_count)
      : steps_array_(std::move(steps)) {
    const std::size_t n = params.size();
    if (state.size() != static_cast<std::size_t>(kColumns)) {
      throw py::value_error("state must hold " + std::to_string(kColumns) + " columns");
    }
    if (groups.size() != n || static_cast<std::size_t>(steps_array_.size()) != n) {
      throw py::value_error("groups and steps must have one entry per param");
    }
    if (!steps_array_.writeable()) throw py::value_error("steps must be writable");
    steps_ = steps_array_.mutable_data();
    group_options_.resize(group_count);
    group_configured_.assign(group_count, false);
    tensors_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      Tensor& t = tensors_[i];
      py::object item = params[i];
      if (!py::isinstance<py::array>(item)) throw py::type_error(index_name("params", i) + " must be a numpy.ndarray");
      t.param = py::reinterpret_borrow<py::array>(item);
      check_bound(t.param, index_name("params", i));
      t.param_data = t.param.mutable_data();
      t.dtype = dtype_of(t.param);
      t.type_num = type_num_of(t.dtype);
      t.size = static_cast<std::int64_t>(t.param.size());
      t.group = py::cast<std::size_t>(groups[i]);
      if (t.group >= group_count) throw py::value_error(index_name("groups", i) + " is out of range");
      add_span(t.param, i, -1);
    }
    for (int c = 0; c < kColumns; ++c) {
      py::object column = state[c];
      if (column.is_none()) continue;
      py::sequence arrays = py::reinterpret_borrow<py::sequence>(column);
      if (arrays.size() != n) throw py::value_error(std::string("state column ") + Traits::columns[c] + " must have one entry per param");
      for (std::size_t i = 0; i < n; ++i) {
        py::object item = arrays[i];
        if (item.is_none()) continue;
        const std::string name = state_name(i, c);
        if (!py::isinstance<py::array>(item)) throw py::type_error(name + " must be a numpy.ndarray");
        py::array array = py::reinterpret_borrow<py::array>(item);
        check_bound(array, name);
        if (dtype_of(array) != tensors_[i].dtype || array.size() != tensors_[i].size) {
          throw py::value_error(name + " must match params[" + std::to_string(i) + "] in dtype and size");
        }
        add_span(array, i, c);
        tensors_[i].state_data[c] = array.mutable_data();
        tensors_[i].state[c] = std::move(array);
      }
    }
    std::sort(spans_.begin(), spans_.end(),
              [](const Span& a, const Span& b) { return a.begin < b.begin; });
    for (std::size_t k = 1; k < spans_.size(); ++k) {
      if (spans_[k].begin < spans_[k - 1].end) {
        throw py::value_error(describe(spans_[k]) + " shares memory with " + describe(spans_[k - 1]));
      }
    }
    build_gaps();
    gap_hint_.assign(n, 0);
    elements_before_.assign(1, 0);
    std::int64_t largest = 0;
    for (std::size_t i = 0; i < n; ++i) {
      Tensor& t = tensors_[i];
      before32_.push_back(static_cast<std::uint32_t>(f32_.size()));
      before64_.push_back(static_cast<std::uint32_t>(f64_.size()));
      before16_.push_back(static_cast<std::uint32_t>(f16_.size()));
      if (t.dtype == DType::float32) add_slot(f32_, rows32_, t, i);
      else if (t.dtype == DType::float64) add_slot(f64_, rows64_, t, i);
      else add_slot(f16_, rows16_, t, i);
      elements_before_.push_back(elements_before_.back() + t.size);
      largest = std::max(largest, t.size);
    }
    before32_.push_back(static_cast<std::uint32_t>(f32_.size()));
    before64_.push_back(static_cast<std::uint32_t>(f64_.size()));
    before16_.push_back(static_cast<std::uint32_t>(f16_.size()));
    balanced_ = largest * 8 <= elements_before_.back();
    array_type_ = py::detail::npy_api::get().PyArray_Type_;
  }

  void set_group(std::size_t group, const Options& options) {
    check_group(group);
    group_options_[group] = options;
    group_configured_[group] = true;
  }

  void set_lr(std::size_t group, double lr) {
    check_group(group);
    Traits::set_lr(group_options_[group], lr);
  }

  // Checks everything, then updates every param whose grad is not None; all or nothing.
  void step(py::handle grads, bool check_finite) {
    struct Busy {
      std::atomic<bool>& flag;
      explicit Busy(std::atomic<bool>& f) : flag(f) {
        if (flag.exchange(true)) {
          throw std::runtime_error("step() is already running on this optimizer in another thread");
        }
      }
      ~Busy() { flag.store(false); }
    } busy(busy_);

    if (!PyList_Check(grads.ptr()) && !PyTuple_Check(grads.ptr())) {
      throw py::type_error("grads must be a list or tuple of arrays aligned with params, got " + type_name(grads));
    }
    const std::size_t n = static_cast<std::size_t>(PySequence_Fast_GET_SIZE(grads.ptr()));
    PyObject** items = PySequence_Fast_ITEMS(grads.ptr());
    if (n != tensors_.size()) {
      throw py::value_error("grads has " + std::to_string(n) + " entries but the optimizer has " + std::to_string(tensors_.size()) + " params");
    }
    for (std::size_t g = 0; g < group_configured_.size(); ++g) {
      if (!group_configured_[g]) throw std::logic_error("plan group " + std::to_string(g) + " has no options");
    }
    const int threads = max_threads();
    // The options of each tensor: one set per group and step number. Usually one set for
    // all (one group, every param stepped as often), given to the slots by the checks.
    options_.clear();
    keys_.clear();
    std::uint32_t shared_options = kNoOptions;
    if (group_options_.size() == 1 && n > 0 && steps_all_equal(n)) shared_options = options_index(0, steps_[0] + 1);
    live_.resize(n);
#if defined(FASTDESCENT_OPENMP)
    if (threads > 1 && n >= kTeamTensors && balanced_ && shared_options != kNoOptions && !check_finite) {
      step_as_team(items, n, threads, shared_options);
      return;
    }
#endif
    std::int64_t elements = 0;
    const std::size_t bad_tensor = check_range(items, 0, n, shared_options, elements);
    if (bad_tensor < n) {
      check_tensor_or_throw(items[bad_tensor], bad_tensor);
      throw std::logic_error("a check failed without an error for tensor " + std::to_string(bad_tensor));
    }
    // Every slot now holds this step's gradient (null for None).
    if (shared_options == kNoOptions) {
      set_options(f32_, rows32_);
      set_options(f64_, rows64_);
      set_options(f16_, rows16_);
    }
    if (check_finite) {
      std::int64_t bad32, bad64, bad16;
      {
        py::gil_scoped_release release;
        // first_nonfinite reads data[0]; point it at each grad for the scan.
        bad32 = first_nonfinite_grad(f32_, active_set<float>());
        bad64 = first_nonfinite_grad(f64_, active_set<double>());
        bad16 = first_nonfinite_grad(f16_, active_kernels().float16);
      }
      std::int64_t bad = -1;
      for (const std::int64_t row : {bad32 < 0 ? -1 : std::int64_t(rows32_[bad32]),
                                     bad64 < 0 ? -1 : std::int64_t(rows64_[bad64]),
                                     bad16 < 0 ? -1 : std::int64_t(rows16_[bad16])}) {
        if (row >= 0 && (bad < 0 || row < bad)) bad = row;
      }
      if (bad >= 0) {
        throw py::value_error(index_name("grads", std::size_t(bad)) + " holds NaN or infinity (check_finite=True); nothing was updated");
      }
    }
    {
      // Releasing and taking back the GIL is a fixed cost that only a small step notices; a
      // small step keeps it (as NumPy's ufuncs do for small arrays).
      std::optional<py::gil_scoped_release> release;
      if (elements >= kReleaseGilElements) release.emplace();
      if (!f32_.empty()) Traits::kernel(active_set<float>())(options_.data(), options_.size(), f32_.data(), f32_.size(), threads);
      if (!f64_.empty()) Traits::kernel(active_set<double>())(options_.data(), options_.size(), f64_.data(), f64_.size(), threads);
      if (!f16_.empty()) Traits::kernel(active_kernels().float16)(options_.data(), options_.size(), f16_.data(), f16_.size(), threads);
    }
    for (std::size_t i = 0; i < n; ++i) steps_[i] += live_[i];
  }

  // The optimizer's lock, taken by step_ready.
  void bind(py::object lock) {
    lock_ = &py::cast<StepLock&>(lock);
    lock_object_ = std::move(lock);
  }

  // The optimizer's step when nothing needs Python first (set by the optimizer, holding the
  // lock): holding the bound lock, if the plan is ready, one step (raising as step() does)
  // and the lock's count incremented; false, changing nothing, when not ready or unbound.
  bool step_ready(py::handle grads) {
    if (lock_ == nullptr) return false;
    StepLockGuard guard(*lock_);
    if (!ready_) return false;
    step(grads, false);
    ++lock_->count;
    return true;
  }

  bool ready() const { return ready_; }
  void set_ready(bool ready) { ready_ = ready; }

  std::size_t size() const { return tensors_.size(); }

 private:
  struct Tensor {
    py::array param;
    py::object state[kColumns];  // a null handle where the param has no such array
    void* param_data = nullptr;
    void* state_data[kColumns] = {};
    DType dtype = DType::float32;
    int type_num = 0;  // NumPy's number of the dtype
    std::int64_t size = 0;
    std::size_t group = 0;
    std::uint32_t slot = 0;  // index in the slots of its dtype
  };

  // A step over this many tensors or more, on more than one thread, runs as one team (see
  // step_as_team): waking a team costs a few microseconds, the checks of a tensor 30-60 ns
  // (its Python objects' fields, missed in cache after a large step).
  static constexpr std::size_t kTeamTensors = 1024;

  static constexpr std::uint32_t kNoOptions = UINT32_MAX;

  bool steps_all_equal(std::size_t n) const {
    const std::int64_t first = steps_[0];
    bool equal = true;
    for (std::size_t i = 1; i < n; ++i) equal &= steps_[i] == first;
    return equal;
  }

#if defined(FASTDESCENT_OPENMP)
  // The step of many tensors with one set of options, in one parallel region: each thread
  // checks a range of whole tensors (split by elements), and once every thread has passed
  // its checks (a barrier), steps the same tensors; the calling thread holds the GIL for
  // the checks (they only read fields no other Python thread can change meanwhile) and
  // lets it go for the update of a large step. One region, not one for the checks and one
  // for the kernel: each region waits for every thread, and on a busy machine for one the
  // scheduler had put aside (a second region doubled the step there, an earlier attempt
  // measured). When a check fails no thread updates anything, and the calling thread checks
  // the first failing tensor again to raise its error, as the serial loop would.
  void step_as_team(PyObject** items, std::size_t n, int threads, std::uint32_t options) {
    const int team = static_cast<int>(std::min<std::size_t>(threads, n / (kTeamTensors / 2)));
    std::vector<std::size_t> bad(team, n);
    std::vector<std::int64_t> elements(team, 0);
    PyThreadState* released = nullptr;
#pragma omp parallel num_threads(team)
    {
      const int t = omp_get_thread_num();
      const int nt = omp_get_num_threads();
      const std::size_t begin = first_tensor_of_share(t, nt), end = first_tensor_of_share(t + 1, nt);
      const std::size_t failed = check_range(items, begin, end, options, elements[t]);
      if (failed < end) bad[t] = failed;
#pragma omp barrier
      bool passed = true;
      std::int64_t total = 0;
      for (int k = 0; k < nt; ++k) {
        passed &= bad[k] == n;
        total += elements[k];
      }
      if (passed) {
        if (t == 0 && total >= kReleaseGilElements) released = PyEval_SaveThread();
        run_tensors<float>(f32_, before32_, begin, end, active_set<float>());
        run_tensors<double>(f64_, before64_, begin, end, active_set<double>());
        run_tensors<float16>(f16_, before16_, begin, end, active_kernels().float16);
      }
    }
    if (released != nullptr) PyEval_RestoreThread(released);
    const std::size_t first_bad = *std::min_element(bad.begin(), bad.end());
    if (first_bad < n) {
      check_tensor_or_throw(items[first_bad], first_bad);
      throw std::logic_error("a check failed without an error for tensor " + std::to_string(first_bad));
    }
    for (std::size_t i = 0; i < n; ++i) steps_[i] += live_[i];
  }

  // The first tensor of share t of nt: shares of whole tensors, split by elements.
  std::size_t first_tensor_of_share(int t, int nt) const {
    const std::size_t n = tensors_.size();
    if (t >= nt) return n;
    const std::int64_t target = elements_before_.back() * t / nt;
    return static_cast<std::size_t>(std::lower_bound(elements_before_.begin(), elements_before_.end(), target) - elements_before_.begin());
  }

  // The kernel, on this thread alone, over the slots of tensors [begin, end) of one dtype.
  template <class T, class Set>
  void run_tensors(const std::vector<Slot<T>>& slots, const std::vector<std::uint32_t>& before,
                   std::size_t begin, std::size_t end, const Set& set) const {
    const std::size_t lo = before[begin], hi = before[end];
    if (lo < hi) Traits::kernel(set)(options_.data(), options_.size(), slots.data() + lo, hi - lo, 1);
  }
#endif

  // A step that follows a large one finds the tensors' Python objects evicted from the
  // caches, and each check waits on a chain of misses (object, then its shape): the loop
  // asks for the objects kAheadObjects tensors ahead and the gradient's shape kAheadShapes
  // ahead (by then its object has arrived).
  static constexpr std::size_t kAheadObjects = 16;
  static constexpr std::size_t kAheadShapes = 8;

  // tensor_passes over [begin, end), stopping at the first failure: its index, or end.
  // `elements` (the elements with a gradient) is written once, at the end: the team's
  // counters share a cache line, which a write per tensor passed back and forth between
  // the two threads' checks.
  std::size_t check_range(PyObject** items, std::size_t begin, std::size_t end,
                          std::uint32_t options, std::int64_t& elements) {
    std::int64_t counted = 0;
    std::size_t i = begin;
    for (; i < end; ++i) {
      if (i + kAheadObjects < end) prefetch_objects(items[i + kAheadObjects], tensors_[i + kAheadObjects]);
      if (i + kAheadShapes < end) prefetch_shape(items[i + kAheadShapes]);
      if (!tensor_passes(items[i], i, options)) break;
      if (live_[i]) counted += tensors_[i].size;
    }
    elements += counted;
    return i;
  }

  static void prefetch_objects(PyObject* grad, const Tensor& t) {
    // An ndarray's fields span two lines: type, data, nd and shape, then the flags.
    prefetch_bytes(grad, sizeof(py::detail::PyArray_Proxy));
    prefetch_read(reinterpret_cast<const char*>(t.param.ptr()) + offsetof(py::detail::PyArray_Proxy, flags));
    for (int c = 0; c < kColumns; ++c) {
      if (t.state[c]) prefetch_read(reinterpret_cast<const char*>(t.state[c].ptr()) + offsetof(py::detail::PyArray_Proxy, flags));
    }
  }

  void prefetch_shape(PyObject* grad) const {
    if (Py_TYPE(grad) == array_type_) prefetch_read(py::detail::array_proxy(grad)->dimensions);
  }

  // Every check of tensor i, in order: with Raise, the first that fails raises its error;
  // without, it returns false (any thread may run it, see step_as_team). On success `data`
  // is the gradient's data, null for None.
  template <bool Raise>
  bool check_tensor(PyObject* grad, std::size_t i, const void*& data) {
    const Tensor& t = tensors_[i];
    if (!writable(t.param.ptr())) {
      if constexpr (Raise) throw py::value_error(index_name("params", i) + " must be writable (it is updated in place)");
      return false;
    }
    for (int c = 0; c < kColumns; ++c) {
      if (t.state[c] && !writable(t.state[c].ptr())) {
        if constexpr (Raise) throw py::value_error(state_name(i, c) + " must be writable");
        return false;
      }
    }
    data = nullptr;
    if (grad == Py_None) return true;
    data = grad_passes(grad, t, i);
    if (data == nullptr) {
      if constexpr (Raise) throw_grad_error(grad, t, i);
      return false;
    }
    const Options& group = group_options_[t.group];
    for (int c = 0; c < kColumns; ++c) {
      if (Traits::requires_column(group, c) && !t.state[c]) {
        if constexpr (Raise) throw std::logic_error(state_name(i, c) + " is needed by the options but missing");
        return false;
      }
    }
    return true;
  }

  // check_tensor without raising; on success tensor i's slot gets the gradient (and
  // `options`, unless kNoOptions) and live_[i] says whether it has one.
  bool tensor_passes(PyObject* grad, std::size_t i, std::uint32_t options) {
    const void* data = nullptr;
    if (!check_tensor<false>(grad, i, data)) return false;
    const Tensor& t = tensors_[i];
    set_gradient(t, data, data == nullptr ? 0 : t.size, options);
    live_[i] = data != nullptr;
    return true;
  }

  // Points tensor t's slot at this step's gradient (null and no elements for None).
  void set_gradient(const Tensor& t, const void* grad, std::int64_t size, std::uint32_t options) {
    auto set = [&](auto& slots) {
      auto& slot = slots[t.slot];
      using Pointer = std::remove_reference_t<decltype(slot.data[1])>;
      slot.data[1] = static_cast<Pointer>(const_cast<void*>(grad));
      slot.size = size;
      if (options != kNoOptions) slot.options = options;
    };
    if (t.dtype == DType::float32) set(f32_);
    else if (t.dtype == DType::float64) set(f64_);
    else set(f16_);
  }

  // Sets the options index of every slot with a gradient (several groups or step numbers).
  template <class T>
  void set_options(std::vector<Slot<T>>& slots, const std::vector<std::size_t>& rows) {
    for (std::size_t k = 0; k < slots.size(); ++k) {
      const std::size_t i = rows[k];
      if (live_[i]) slots[k].options = options_index(tensors_[i].group, steps_[i] + 1);
    }
  }

  // Raises the error of tensor i's first failing check.
  void check_tensor_or_throw(PyObject* grad, std::size_t i) {
    const void* data = nullptr;
    check_tensor<true>(grad, i, data);
  }

  static std::string state_name(std::size_t i, int c) {
    return "state[" + std::to_string(i) + "]['" + Traits::columns[c] + "']";
  }

  std::string describe(const Span& span) const {
    return span.column < 0 ? index_name("params", span.tensor) : state_name(span.tensor, span.column);
  }

  static void check_bound(const py::array& a, const std::string& name) {
    if (!is_float_array(a)) throw py::type_error(name + " must have dtype float16, float32 or float64 in native byte order");
    if (!(a.flags() & py::array::c_style)) throw py::value_error(name + " must be C-contiguous");
    if (!a.writeable()) throw py::value_error(name + " must be writable (it is updated in place)");
  }

  void add_span(const py::array& a, std::size_t tensor, int column) {
    if (a.nbytes() == 0) return;
    const auto begin = reinterpret_cast<std::uintptr_t>(a.data());
    spans_.push_back({begin, begin + static_cast<std::uintptr_t>(a.nbytes()), tensor, column});
  }

  void check_group(std::size_t group) const {
    if (group >= group_options_.size()) throw py::value_error("group " + std::to_string(group) + " is out of range");
  }

  static bool writable(PyObject* array) {
    return (py::detail::array_proxy(array)->flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_) != 0;
  }

  // The gradient's data if it passes the checks against the param (an ndarray of the
  // param's dtype (native byte order) and shape, C-contiguous, sharing no memory with any
  // param or state array), else null. Raw NumPy fields: this runs once per tensor per step,
  // on any thread (see step_as_team). A passing gradient's data is never null: an
  // ndarray's data pointer is not, even when it has no elements.
  const void* grad_passes(PyObject* object, const Tensor& t, std::size_t i) {
    if (!is_array(object)) return nullptr;
    const auto* grad = py::detail::array_proxy(object);
    const auto* param = py::detail::array_proxy(t.param.ptr());
    const auto* descr = py::detail::array_descriptor_proxy(grad->descr);
    bool ok = descr->type_num == t.type_num && descr->byteorder != kForeignByteOrder &&
              (grad->flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_) &&
              grad->nd == param->nd;
    if (ok && grad->nd == 1) {
      // A 1-d param's one length is its size, which cannot change: no need to read its
      // shape (a separate allocation, often missed in cache by a step over many tensors).
      ok = grad->dimensions[0] == t.size;
    } else {
      for (int d = 0; ok && d < grad->nd; ++d) ok = grad->dimensions[d] == param->dimensions[d];
    }
    if (!ok || grad->data == nullptr) return nullptr;
    if (t.size == 0) return grad->data;
    const auto begin = reinterpret_cast<std::uintptr_t>(grad->data);
    const auto end = begin + static_cast<std::uintptr_t>(t.size) * itemsize_of(t.dtype);
    // Most steps pass the same gradients, or ones allocated where the last ones were: try
    // the free interval this tensor's gradient was in last step before searching.
    const Gap* gap = &gaps_[gap_hint_[i]];
    if (!(gap->lo <= begin && end <= gap->hi)) {
      gap = std::upper_bound(gaps_.data(), gaps_.data() + gaps_.size(), begin,
                             [](std::uintptr_t b, const Gap& g) { return b < g.lo; }) - 1;
      if (end > gap->hi) return nullptr;
      gap_hint_[i] = static_cast<std::uint32_t>(gap - gaps_.data());
    }
    return grad->data;
  }

  // Raises the error grad_passes found (type, dtype, contiguity, shape or shared memory).
  [[noreturn]] FASTDESCENT_COLD void throw_grad_error(PyObject* object, const Tensor& t, std::size_t i) const {
    const py::handle handle(object);
    if (!is_array(object)) {
      throw py::type_error(index_name("grads", i) + " must be a numpy.ndarray, got " + type_name(handle));
    }
    const auto* grad = py::detail::array_proxy(object);
    const auto* descr = py::detail::array_descriptor_proxy(grad->descr);
    const bool f32 = descr->type_num == py::detail::npy_api::NPY_FLOAT_;
    const bool f64 = descr->type_num == py::detail::npy_api::NPY_DOUBLE_;
    const bool f16 = descr->type_num == kNpyHalf;
    if (descr->byteorder == kForeignByteOrder || (!f32 && !f64 && !f16)) {
      throw py::type_error(index_name("grads", i) + " must have dtype float16, float32 or float64 in native byte order, got " + std::string(py::str(handle.attr("dtype"))));
    }
    if (descr->type_num != t.type_num) {
      throw py::type_error(index_name("grads", i) + " has dtype " + std::string(py::str(handle.attr("dtype"))) + " but params[" + std::to_string(i) + "] has dtype " + std::string(py::str(t.param.dtype())));
    }
    if (!(grad->flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_)) {
      throw py::value_error(index_name("grads", i) + " must be C-contiguous (use numpy.ascontiguousarray)");
    }
    const auto* param = py::detail::array_proxy(t.param.ptr());
    bool same_shape = grad->nd == param->nd;
    for (int d = 0; same_shape && d < grad->nd; ++d) same_shape = grad->dimensions[d] == param->dimensions[d];
    if (same_shape) {
      if (grad->data == nullptr) throw py::value_error(index_name("grads", i) + " has no data buffer");
      const auto begin = reinterpret_cast<std::uintptr_t>(grad->data);
      throw_shared_memory_error(begin + static_cast<std::uintptr_t>(t.size) * itemsize_of(t.dtype), i);
    }
    throw py::value_error(index_name("grads", i) + " has shape " + std::string(py::str(handle.attr("shape"))) + " but params[" + std::to_string(i) + "] has shape " + std::string(py::str(t.param.attr("shape"))));
  }

  // Raises the error for a gradient ending at `end` that overlaps a param or state array.
  [[noreturn]] FASTDESCENT_COLD void throw_shared_memory_error(std::uintptr_t end, std::size_t i) const {
    // Spans are disjoint and sorted, so only the last one starting before `end` can overlap.
    auto after = std::lower_bound(spans_.begin(), spans_.end(), end, [](const Span& s, std::uintptr_t e) { return s.begin < e; });
    const Span& span = *(after - 1);
    if (span.column < 0) {
      throw py::value_error(index_name("grads", i) + " shares memory with " + describe(span) + ": a gradient must be a separate array");
    }
    throw py::value_error(index_name("grads", i) + " shares memory with " + describe(span));
  }

  // The free address intervals between the bound arrays (adjacent arrays merged, as when
  // the state arrays of one kind are slices of one buffer), lowest first.
  void build_gaps() {
    gaps_.clear();
    std::uintptr_t free_from = 0;
    for (const Span& span : spans_) {
      if (span.begin != free_from) gaps_.push_back({free_from, span.begin});
      free_from = span.end;
    }
    gaps_.push_back({free_from, UINTPTR_MAX});
  }

  bool is_array(PyObject* object) const {
    return Py_TYPE(object) == array_type_ || PyType_IsSubtype(Py_TYPE(object), array_type_);
  }

  std::uint32_t options_index(std::size_t group, std::int64_t step) {
    const std::int64_t key = Traits::step_key(step);
    if (!keys_.empty() && keys_[last_].first == group && keys_[last_].second == key) return static_cast<std::uint32_t>(last_);
    for (std::size_t k = 0; k < keys_.size(); ++k) {
      if (keys_[k].first == group && keys_[k].second == key) {
        last_ = k;
        return static_cast<std::uint32_t>(k);
      }
    }
    Options options = group_options_[group];
    Traits::set_step(options, step);
    options_.push_back(options);
    keys_.emplace_back(group, key);
    last_ = keys_.size() - 1;
    return static_cast<std::uint32_t>(last_);
  }

  // Tensor t's slot: its param and state arrays, no gradient until a step gives one.
  template <class T>
  static void add_slot(std::vector<Slot<T>>& slots, std::vector<std::size_t>& rows, Tensor& t, std::size_t i) {
    t.slot = static_cast<std::uint32_t>(slots.size());
    Slot<T>& s = slots.emplace_back();
    s.size = 0;
    s.options = 0;
    s.data[0] = static_cast<T*>(t.param_data);
    s.data[1] = nullptr;
    for (int c = 0; c < kColumns; ++c) s.data[2 + c] = static_cast<T*>(t.state_data[c]);
    rows.push_back(i);
  }

  template <class T, class Set>
  static std::int64_t first_nonfinite_grad(const std::vector<Slot<T>>& slots, const Set& set) {
    std::vector<Slot<T>> grads(slots);
    for (Slot<T>& s : grads) s.data[0] = s.data[1];
    return set.first_nonfinite(grads.data(), grads.size());
  }

  std::vector<Tensor> tensors_;
  std::vector<Options> group_options_;
  std::vector<bool> group_configured_;
  py::array_t<std::int64_t, py::array::c_style> steps_array_;
  std::int64_t* steps_ = nullptr;
  std::vector<Span> spans_;
  std::vector<Gap> gaps_;
  std::vector<std::uint32_t> gap_hint_;  // per tensor: the gap its last gradient was in
  PyTypeObject* array_type_ = nullptr;
  std::atomic<bool> busy_{false};
  py::object lock_object_;  // keeps lock_ alive
  StepLock* lock_ = nullptr;
  bool ready_ = false;
  // One slot per tensor of each dtype, in tensor order (rows*: the tensor of each slot),
  // built once; a step sets each slot's gradient (null for None) and options.
  std::vector<Slot<float>> f32_;
  std::vector<Slot<double>> f64_;
  std::vector<Slot<float16>> f16_;
  std::vector<std::size_t> rows32_, rows64_, rows16_;
  std::vector<std::uint8_t> live_;  // per tensor: 1 if this step gave it a gradient
  // Built once: elements_before_[i], the elements of tensors [0, i) (n + 1 entries);
  // before*_[i], the slots of that dtype among tensors [0, i); whether no tensor holds more
  // than an eighth of the elements (so that shares of whole tensors stay even).
  std::vector<std::int64_t> elements_before_;
  std::vector<std::uint32_t> before32_, before64_, before16_;
  bool balanced_ = false;
  std::vector<Options> options_;
  std::vector<std::pair<std::size_t, std::int64_t>> keys_;
  std::size_t last_ = 0;
};

template <class Traits>
void bind_plan(py::module_& m, const char* name, const char* doc) {
  using namespace pybind11::literals;
  using Plan = StepPlan<Traits>;
  py::class_<Plan> cls(m, name, doc);
  cls.def(py::init<py::sequence, py::sequence, py::sequence,
                   py::array_t<std::int64_t, py::array::c_style>, std::size_t>(),
          "params"_a, "state"_a, "groups"_a, "steps"_a, "group_count"_a);
  // set_group(group, **options): the options by the names of the optimizer's kernel.
  cls.def("set_group", [](Plan& plan, std::size_t group, const py::kwargs& options) {
    plan.set_group(group, Traits::read(options));
  }, "group"_a);
  cls.def("set_lr", &Plan::set_lr, "group"_a, "lr"_a);
  cls.def("step", &Plan::step, "grads"_a, "check_finite"_a = false);
  cls.def("bind", &Plan::bind, "lock"_a, "Take this StepLock in step_ready.");
  cls.def("step_ready", &Plan::step_ready, "grads"_a,
          "Holding the bound lock: if ready, step and count the step (True); else False.");
  cls.def_property("ready", &Plan::ready, &Plan::set_ready);
  cls.def("__len__", &Plan::size);
  py::list columns;
  for (const char* column : Traits::columns) columns.append(column);
  cls.attr("columns") = py::tuple(columns);
}

}  // namespace

void register_plans(py::module_& m) {
  using namespace pybind11::literals;
  py::class_<StepLock>(m, "StepLock",
                       "A reentrant lock that serializes an optimizer's steps and edits, and "
                       "counts its steps; plans take it in C++ (bind, step_ready).")
      .def(py::init<>())
      .def("__enter__", [](StepLock& lock) { lock.acquire(); })
      .def("__exit__", [](StepLock& lock, const py::args&) {
        lock.release();
        return false;
      })
      .def_readwrite("count", &StepLock::count, "Steps completed.");
  bind_plan<SGDTraits>(m, "SGDPlan", "SGD over bound tensors: state column momentum_buffer.");
  bind_plan<AdagradTraits>(m, "AdagradPlan", "Adagrad over bound tensors: state column sum.");
  bind_plan<RMSpropTraits>(
      m, "RMSpropPlan",
      "RMSprop over bound tensors: state columns square_avg, grad_avg, momentum_buffer.");
  bind_plan<AdamTraits>(
      m, "AdamPlan",
      "Adam / AdamW over bound tensors: state columns exp_avg, exp_avg_sq, max_exp_avg_sq.");
}

}  // namespace fastdescent::bindings
