// The seeded row orders of the epoch loops (train.hpp): one shuffle per (seed, epoch), made
// on a second thread while the previous epoch trains (the first while the input is checked). Which thread draws an epoch never
// changes its order: each epoch has its own seeded sequence. Each order comes with the
// targets in that order, so the loop reads them in sequence rather than one cache line per
// row (a sixth of the lines a 32-feature float64 row takes).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <system_error>
#include <thread>

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>  // __umulh
#endif

namespace fastdescent::train {

// The high 64 bits of a 64 x 64-bit product (MSVC has no 128-bit integer type).
inline std::uint64_t multiply_high(std::uint64_t a, std::uint64_t b) {
#if defined(_MSC_VER) && !defined(__clang__)
  return __umulh(a, b);
#else
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
#endif
}

template <class T>
inline void prefetch_write(T* address) {
#if defined(__GNUC__)
  __builtin_prefetch(address, 1, 3);
#else
  (void)address;
#endif
}

// The seeded order of (seed, epoch): a Fisher-Yates shuffle of 0..n-1 (step i swaps
// position i with one drawn uniformly from [i, n)).
template <class Index>
void shuffled_order(Index* order, std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
  std::seed_seq sequence{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                         static_cast<std::uint32_t>(epoch),
                         static_cast<std::uint32_t>(static_cast<std::uint64_t>(epoch) >> 32)};
  std::mt19937_64 random(sequence);
  for (std::int64_t i = 0; i < n; ++i) order[i] = static_cast<Index>(i);
  // Uniform on [i, n) by a 64 x 64 -> 128-bit multiply (Lemire, without the rejection step:
  // the bias is below 2^-40 for any n that fits in memory).
  auto draw = [&](std::int64_t i) {
    return i + static_cast<std::int64_t>(multiply_high(random(), static_cast<std::uint64_t>(n - i)));
  };
  // The positions swapped with do not depend on the array, so they are drawn kAhead steps
  // early and their entries asked for: each swap reads a random place in an array of
  // megabytes, a cache miss that would otherwise stall every step (same orders; shared
  // 2-vCPU EPYC: 4M rows 122 -> 66 ms, 1M rows 14.5 -> 12.7 ms).
  constexpr std::int64_t kAhead = 16;
  std::int64_t ahead[kAhead];
  const std::int64_t last = n - 1;  // steps i = 0 .. n - 2
  for (std::int64_t i = 0; i < std::min(kAhead, last); ++i) {
    ahead[i] = draw(i);
    prefetch_write(order + ahead[i]);
  }
  for (std::int64_t i = 0; i < last; ++i) {
    const std::int64_t j = ahead[i % kAhead];
    if (i + kAhead < last) {
      ahead[i % kAhead] = draw(i + kAhead);
      prefetch_write(order + ahead[i % kAhead]);
    }
    std::swap(order[i], order[j]);
  }
}

// An epoch's order and its targets in that order (y[i] is the target of row order[i]).
template <class Index, class T>
struct Rows {
  const Index* order;
  const T* y;
};

// The targets of the rows in `order` (n entries), in that order.
template <class Index, class T>
void targets_in_order(T* out, const T* y, const Index* order, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = y[order[i]];
}

// The orders of epochs first_epoch .. first_epoch + epochs - 1 of the rows whose targets are
// `y`, each with its targets in order, in two buffers used in turn. Each epoch's order is
// drawn whole by one thread, the one that claims it first (claims go in epoch order). With
// `background`, a second thread starts at construction: it claims and draws epoch 0 while
// the loop's thread does what comes before training (fit_linear checks X), then epoch e + 1
// while epoch e trains (into the buffer epoch e - 1 has released). The loop claims and draws
// an epoch itself when it gets there first, and waits only when it reaches an epoch the
// helper claimed and has not finished; no lock is held while drawing, so a helper the OS
// does not schedule never blocks the loop's own draws.
template <class Index, class T>
class EpochOrders {
 public:
  EpochOrders(const T* y, std::int64_t n, std::uint64_t seed, std::int64_t first_epoch,
              std::int64_t epochs, bool background)
      : y_(y), n_(n), seed_(seed), first_epoch_(first_epoch), epochs_(epochs) {
    // Not value-initialized: each buffer is written by its first shuffle, and the second's
    // pages are never touched in a one-epoch call.
    for (int b = 0; b < 2; ++b) {
      buffers_[b].reset(new Index[static_cast<std::size_t>(n)]);
      targets_[b].reset(new T[static_cast<std::size_t>(n)]);
      ready_[b].store(-1, std::memory_order_relaxed);
    }
    if (background && epochs > 0) {
      try {
        helper_ = std::thread([this] { draw_ahead(); });
      } catch (const std::system_error&) {
        // No thread to be had: the loop draws every order itself.
      }
    }
  }

  EpochOrders(const EpochOrders&) = delete;
  EpochOrders& operator=(const EpochOrders&) = delete;

  ~EpochOrders() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    released_.notify_one();
    if (helper_.joinable()) helper_.join();
  }

  // Epoch e's order and targets (e counted from first_epoch; epoch e - 2 released).
  Rows<Index, T> rows(std::int64_t e) {
    if (claim(e)) {
      draw(e);
    } else {
      while (ready_[e % 2].load(std::memory_order_acquire) != e) std::this_thread::yield();
    }
    return {buffers_[e % 2].get(), targets_[e % 2].get()};
  }

  // The loop is done with epoch e's order: its buffer may take epoch e + 2's.
  void release(std::int64_t e) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      released_epochs_ = e + 1;
    }
    released_.notify_one();
  }

 private:
  // Whether this thread is the one to draw epoch e (claims go in epoch order).
  bool claim(std::int64_t e) {
    std::int64_t expected = e;
    return claimed_.compare_exchange_strong(expected, e + 1, std::memory_order_acq_rel);
  }

  void draw(std::int64_t e) {
    Index* order = buffers_[e % 2].get();
    shuffled_order(order, n_, seed_, first_epoch_ + e);
    targets_in_order(targets_[e % 2].get(), y_, order, n_);
    ready_[e % 2].store(e, std::memory_order_release);
  }

  void draw_ahead() {
    for (;;) {
      const std::int64_t e = claimed_.load(std::memory_order_acquire);
      if (e >= epochs_) return;
      {
        // Epoch e's buffer is free once the loop has released epoch e - 2.
        std::unique_lock<std::mutex> lock(mutex_);
        released_.wait(lock, [&] { return stop_ || released_epochs_ >= e - 1; });
        if (stop_) return;
      }
      if (claim(e)) draw(e);
    }
  }

  const T* const y_;
  const std::int64_t n_;
  const std::uint64_t seed_;
  const std::int64_t first_epoch_, epochs_;
  std::unique_ptr<Index[]> buffers_[2];
  std::unique_ptr<T[]> targets_[2];
  std::atomic<std::int64_t> ready_[2];  // the epoch whose order buffer b holds complete
  std::atomic<std::int64_t> claimed_{0};  // epochs below this are claimed
  std::mutex mutex_;
  std::condition_variable released_;
  std::int64_t released_epochs_ = 0;  // epochs the loop is done with, under mutex_
  bool stop_ = false;                 // under mutex_
  std::thread helper_;
};

}  // namespace fastdescent::train
