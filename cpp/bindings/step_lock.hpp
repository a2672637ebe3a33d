// The lock that serializes an optimizer's steps and the methods that change it (state dicts,
// groups), and the count of the steps it has let through. Python takes it with `with`; a
// plan takes it in C++, so that a step needs no Python call besides its own: on a small
// step Python's own lock (threading.RLock) cost about as much as the step.
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>

namespace fastdescent::bindings {

namespace py = pybind11;

class StepLock {
 public:
  // Reentrant, as threading.RLock: a schedule or callback may call into the optimizer while
  // its thread holds the lock. Called with the GIL held.
  void acquire() {
    const std::thread::id self = std::this_thread::get_id();
    if (owner_.load(std::memory_order_relaxed) == self) {
      ++depth_;
      return;
    }
    if (!mutex_.try_lock()) {
      // The holder may be waiting for the GIL (to finish a step whose kernel ran without it,
      // or to run the Python of a locked method): wait without it.
      py::gil_scoped_release release;
      mutex_.lock();
    }
    owner_.store(self, std::memory_order_relaxed);
    depth_ = 1;
  }

  void release() {
    if (owner_.load(std::memory_order_relaxed) != std::this_thread::get_id()) {
      throw std::runtime_error("StepLock released by a thread that does not hold it");
    }
    if (--depth_ == 0) {
      owner_.store(std::thread::id(), std::memory_order_relaxed);
      mutex_.unlock();
    }
  }

  // Steps completed (the optimizer's step_count); read and written holding the lock.
  std::int64_t count = 0;

 private:
  std::mutex mutex_;
  std::atomic<std::thread::id> owner_{};
  int depth_ = 0;
};

// Holds a StepLock for a scope.
class StepLockGuard {
 public:
  explicit StepLockGuard(StepLock& lock) : lock_(lock) { lock_.acquire(); }
  ~StepLockGuard() { lock_.release(); }
  StepLockGuard(const StepLockGuard&) = delete;
  StepLockGuard& operator=(const StepLockGuard&) = delete;

 private:
  StepLock& lock_;
};

}  // namespace fastdescent::bindings
