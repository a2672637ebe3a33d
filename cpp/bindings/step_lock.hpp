// The lock that serializes an optimizer's steps and the methods that change it (state dicts,
// groups), and the count of the steps it has let through. Python takes it with `with`; a
// plan takes it in C++, so that a step needs no Python call besides its own: on a small
// step Python's own lock (threading.RLock) cost about as much as the step.
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace fastdescent::bindings {

namespace py = pybind11;

class StepLock {
 public:
  // Reentrant, as threading.RLock: a schedule or callback may call into the optimizer while
  // its thread holds the lock. Called with the GIL held.
  //
  // Fair (first come, first served, by ticket): a thread that releases the lock and asks
  // for it again at once (a loop taking state_dict snapshots) must not keep a waiting step
  // out. With a plain mutex it did: the waiter, woken by the release, was scheduled after
  // the releaser had locked again, and a test's snapshots piled up until memory ran out.
  void acquire() {
    const std::thread::id self = std::this_thread::get_id();
    if (owner_.load(std::memory_order_relaxed) == self) {
      ++depth_;
      return;
    }
    const std::uint64_t ticket = next_ticket_.fetch_add(1);
    if (serving_.load() != ticket) {
      // The holder may be waiting for the GIL (to finish a step whose kernel ran without it,
      // or to run the Python of a locked method): wait without it. The mutex is released
      // before the GIL is taken back (declared after `release`, destroyed before it).
      py::gil_scoped_release release;
      std::unique_lock<std::mutex> wait(mutex_);
      turn_.wait(wait, [&] { return serving_.load() == ticket; });
    }
    owner_.store(self, std::memory_order_relaxed);
    depth_ = 1;
  }

  void release() {
    if (owner_.load(std::memory_order_relaxed) != std::this_thread::get_id()) {
      throw std::runtime_error("StepLock released by a thread that does not hold it");
    }
    if (--depth_ > 0) return;
    owner_.store(std::thread::id(), std::memory_order_relaxed);
    const std::uint64_t next = serving_.fetch_add(1) + 1;
    if (next_ticket_.load() != next) {
      // A later ticket is waiting, or about to: taking the mutex orders this notify after
      // its check of serving_ (made holding the mutex), so the wake-up cannot be missed.
      { std::lock_guard<std::mutex> lock(mutex_); }
      turn_.notify_all();
    }
  }

  // Steps completed (the optimizer's step_count); read and written holding the lock.
  std::int64_t count = 0;

 private:
  // Uncontended, a lock and a release are one atomic increment each; the mutex and the
  // condition variable only serve the waiting.
  std::atomic<std::uint64_t> next_ticket_{0};  // the ticket the next acquire takes
  std::atomic<std::uint64_t> serving_{0};      // the ticket that holds the lock (or is next to)
  std::mutex mutex_;
  std::condition_variable turn_;
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
