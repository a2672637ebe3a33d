// The seeded row orders of the epoch loops (train.hpp): one shuffle per (seed, epoch), drawn
// in chunks so that it can be made on a second thread while the previous epoch trains and
// read from its first rows before its last ones are drawn. Which thread draws which chunk
// never changes the order: the draws are one sequence per (seed, epoch). Each order comes
// with the targets in that order, so the loop reads them in sequence rather than one cache
// line per row (a sixth of the lines a 32-feature float64 row takes).
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

namespace fastdescent::train {

// A forward Fisher-Yates shuffle of 0..n-1: step i swaps position i with a position drawn
// uniformly from [i, n), so positions 0..i are final once step i is done.
template <class Index>
class Shuffle {
 public:
  Shuffle() = default;

  // Starts the shuffle of (seed, epoch) in `order` (n entries): the identity, nothing drawn.
  void start(Index* order, std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
    std::seed_seq sequence{static_cast<std::uint32_t>(seed),
                           static_cast<std::uint32_t>(seed >> 32),
                           static_cast<std::uint32_t>(epoch),
                           static_cast<std::uint32_t>(static_cast<std::uint64_t>(epoch) >> 32)};
    random_.seed(sequence);
    order_ = order;
    n_ = n;
    step_ = 0;
    for (std::int64_t i = 0; i < n; ++i) order[i] = static_cast<Index>(i);
  }

  // Draws up to `steps` more steps; returns how many positions are final.
  std::int64_t advance(std::int64_t steps) {
    const std::int64_t last = std::min(n_ - 1, step_ + steps);
    for (std::int64_t i = step_; i < last; ++i) {
      // Uniform on [i, n) by a 64 x 64 -> 128-bit multiply (Lemire, without the rejection
      // step: the bias is below 2^-40 for any n that fits in memory).
      const std::uint64_t span = static_cast<std::uint64_t>(n_ - i);
      const std::int64_t j = i + static_cast<std::int64_t>(
          (static_cast<unsigned __int128>(random_()) * span) >> 64);
      std::swap(order_[i], order_[j]);
    }
    step_ = std::max<std::int64_t>(step_, last);
    return final_positions();
  }

  // Position n-1 is final when position n-2 is: nothing is left to swap it with.
  std::int64_t final_positions() const { return step_ >= n_ - 1 ? n_ : step_; }

 private:
  std::mt19937_64 random_;
  Index* order_ = nullptr;
  std::int64_t n_ = 0, step_ = 0;
};

// The whole order of (seed, epoch) at once.
template <class Index>
void shuffled_order(Index* order, std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
  Shuffle<Index> shuffle;
  shuffle.start(order, n, seed, epoch);
  shuffle.advance(n);
}

// An epoch's order and its targets in that order (y[i] is the target of row order[i]).
template <class Index, class T>
struct Rows {
  const Index* order;
  const T* y;
};

// The orders of epochs first_epoch .. first_epoch + epochs - 1 of the rows whose targets are
// `y`, with those targets in order, in two buffers used in turn.
// With `background`, a second thread draws them ahead of the epoch loop: while epoch e
// trains it finishes epoch e + 1's order (whose buffer epoch e - 1 has released). The loop
// asks for the rows it is about to read (rows(e, count)) and draws those not drawn yet
// itself when the helper is not drawing. Both threads draw under one mutex, from the one
// sequence of each epoch.
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

  // Epoch e's order and targets (e counted from first_epoch), their first `count` positions
  // final.
  Rows<Index, T> rows(std::int64_t e, std::int64_t count) {
    const std::int64_t needed = e * n_ + std::min(count, n_);
    while (drawn_.load(std::memory_order_acquire) < needed) {
      // The helper holds the mutex while it draws a chunk: watch its progress rather than
      // queue for the mutex (which it may take again first).
      if (!mutex_.try_lock()) {
        std::this_thread::yield();
        continue;
      }
      while (drawn_.load(std::memory_order_relaxed) < needed) draw_chunk();
      mutex_.unlock();
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
  // Steps per chunk: about 50 microseconds of drawing, the longest the loop can wait for
  // the mutex.
  static constexpr std::int64_t kChunk = 1024;

  // One chunk of the epoch being drawn (called under the mutex, and only when that epoch's
  // buffer is free: epoch drawing_ - 2 released).
  void draw_chunk() {
    if (!started_) {
      shuffle_.start(buffers_[drawing_ % 2].get(), n_, seed_,
                     first_epoch_ + drawing_);
      started_ = true;
    }
    const std::int64_t before = drawn_.load(std::memory_order_relaxed) - drawing_ * n_;
    const std::int64_t final_positions = shuffle_.advance(kChunk);
    gather_targets(drawing_ % 2, before, final_positions);
    drawn_.store(drawing_ * n_ + final_positions, std::memory_order_release);
    if (final_positions == n_) {
      ++drawing_;
      started_ = false;
    }
  }

  // The targets of positions [begin, end) of buffer b's order: random reads of y, each asked
  // for ahead of its use.
  void gather_targets(std::int64_t b, std::int64_t begin, std::int64_t end) {
    constexpr std::int64_t kAhead = 16;
    const Index* order = buffers_[b].get();
    T* targets = targets_[b].get();
    for (std::int64_t i = begin; i < end; ++i) {
#if defined(__GNUC__)
      if (i + kAhead < end) __builtin_prefetch(y_ + order[i + kAhead], 0, 0);
#endif
      targets[i] = y_[order[i]];
    }
  }

  void draw_ahead() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_ && drawing_ < epochs_) {
      if (drawing_ >= released_epochs_ + 2) {
        released_.wait(lock);
        continue;
      }
      draw_chunk();
      // Let the loop in between chunks.
      lock.unlock();
      lock.lock();
    }
  }

  const T* const y_;
  const std::int64_t n_;
  const std::uint64_t seed_;
  const std::int64_t first_epoch_, epochs_;
  std::unique_ptr<Index[]> buffers_[2];
  std::unique_ptr<T[]> targets_[2];
  std::mutex mutex_;
  std::condition_variable released_;
  Shuffle<Index> shuffle_;          // the epoch being drawn, under mutex_
  std::int64_t drawing_ = 0;        // which epoch that is (from first_epoch), under mutex_
  bool started_ = false;            // whether its shuffle has started, under mutex_
  std::int64_t released_epochs_ = 0;  // epochs the loop is done with, under mutex_
  bool stop_ = false;               // under mutex_
  // Final positions over all epochs so far: epoch e's position i is final when this
  // exceeds e * n + i. Written under mutex_, read without it by rows().
  std::atomic<std::int64_t> drawn_{0};
  std::thread helper_;
};

}  // namespace fastdescent::train
