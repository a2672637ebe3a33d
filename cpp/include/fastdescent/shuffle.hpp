// The seeded row orders of the epoch loops (train.hpp): one shuffle per (seed, epoch), made on a
// second thread while the previous epoch trains (the first while the input is checked). Which
// thread draws an epoch never changes its order: each epoch has its own seeded sequence. Each order
// comes with the targets in that order, so the loop reads them in sequence rather than one cache
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

#include "rows.hpp"

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

// The seeded order of (seed, epoch): a Fisher-Yates shuffle of 0..n-1 (step i swaps
// position i with one drawn uniformly from [i, n)), made in slices (run), so that the
// thread drawing it can do other work in between.
template <class Index>
class Shuffle {
 public:
  Shuffle(Index* order, std::int64_t n, std::uint64_t seed, std::int64_t epoch)
      : order_(order), n_(n), last_(n - 1), random_(sequence(seed, epoch)) {
    for (std::int64_t i = 0; i < n; ++i) order[i] = static_cast<Index>(i);
    for (std::int64_t i = 0; i < std::min(kAhead, last_); ++i) {
      ahead_[i] = draw(i);
      prefetch_write(order + ahead_[i]);
    }
  }

  // Makes up to `steps` more swaps; returns whether the order is complete.
  bool run(std::int64_t steps) {
    const std::int64_t stop = std::min(last_, step_ + steps);
    for (; step_ < stop; ++step_) {
      const std::int64_t i = step_;
      const std::int64_t j = ahead_[i % kAhead];
      if (i + kAhead < last_) {
        ahead_[i % kAhead] = draw(i + kAhead);
        prefetch_write(order_ + ahead_[i % kAhead]);
      }
      std::swap(order_[i], order_[j]);
    }
    return step_ >= last_;
  }

 private:
  // The positions swapped with do not depend on the array, so they are drawn kAhead steps
  // early and their entries asked for: each swap reads a random place in an array of
  // megabytes, a cache miss that would otherwise stall every step (same orders; shared
  // 2-vCPU EPYC: 4M rows 122 -> 66 ms, 1M rows 14.5 -> 12.7 ms).
  static constexpr std::int64_t kAhead = 16;

  static std::mt19937_64 sequence(std::uint64_t seed, std::int64_t epoch) {
    std::seed_seq words{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                        static_cast<std::uint32_t>(epoch),
                        static_cast<std::uint32_t>(static_cast<std::uint64_t>(epoch) >> 32)};
    return std::mt19937_64(words);
  }

  // Uniform on [i, n) by a 64 x 64 -> 128-bit multiply (Lemire, without the rejection step:
  // the bias is below 2^-40 for any n that fits in memory).
  std::int64_t draw(std::int64_t i) {
    const auto span = static_cast<std::uint64_t>(n_ - i);
    return i + static_cast<std::int64_t>(multiply_high(random_(), span));
  }

  Index* const order_;
  const std::int64_t n_, last_;  // steps 0 .. n - 2
  std::mt19937_64 random_;
  std::int64_t ahead_[kAhead] = {};
  std::int64_t step_ = 0;
};

// The whole order of (seed, epoch) at once.
template <class Index>
void shuffled_order(Index* order, std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
  Shuffle<Index>(order, n, seed, epoch).run(n);
}

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
//
// Given the rows X (f features each), the helper also warms the caches, while it draws (between
// slices of the shuffle) and after: it asks for the rows the loop will read next (kWarmBytes of
// them, from a little past where the loop reports it is), so the loop's own copies find them in the
// caches the two cores share rather than in memory. Only a hint: the loop never waits for it.
// Measured with a C++ harness of one shuffled epoch of 1,000,000 x 32 float64 rows on a shared
// 2-vCPU EPYC (Zen 1), medians of 9 epochs: 66-77 ms alone, 50-53 ms warmed; with both cores busy
// with other work, 85-128 ms alone and 72-91 ms warmed, the helper yielding whenever it is ahead
// (spinning instead: 143-155 ms).
template <class Index, class T>
class EpochOrders {
 public:
  EpochOrders(const T* y, std::int64_t n, std::uint64_t seed, std::int64_t first_epoch,
              std::int64_t epochs, bool background, const T* X = nullptr, std::int64_t f = 0)
      : y_(y), n_(n), seed_(seed), first_epoch_(first_epoch), epochs_(epochs), X_(X), f_(f) {
    // Not value-initialized: each buffer is written by its first shuffle, and the second's
    // pages are never touched in a one-epoch call.
    for (int b = 0; b < 2; ++b) {
      buffers_[b].reset(new Index[static_cast<std::size_t>(n)]);
      targets_[b].reset(new T[static_cast<std::size_t>(n)]);
      ready_[b].store(-1, std::memory_order_relaxed);
      readers_[b].store(0, std::memory_order_relaxed);
    }
    if (X_ && f_ > 0) {
      const std::int64_t row_bytes = f_ * static_cast<std::int64_t>(sizeof(T));
      // Past the chunk being copied, the next one, and the loop's own prefetch distance.
      warm_lead_ = 2 * gather_chunk(row_bytes) + kPrefetchRows;
      warm_rows_ = std::max<std::int64_t>(kPrefetchRows, kWarmBytes / row_bytes);
    } else {
      X_ = nullptr;
    }
    if (background && epochs > 0) {
      try {
        helper_ = std::thread([this] { help(); });
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
      stop_.store(true, std::memory_order_release);
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
    progress_.store(0, std::memory_order_relaxed);
    training_.store(e, std::memory_order_release);
    return {buffers_[e % 2].get(), targets_[e % 2].get(), &progress_};
  }

  // The loop is done with epoch e's order: its buffer may take epoch e + 2's.
  void release(std::int64_t e) {
    training_.store(-1, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      released_epochs_.store(e + 1, std::memory_order_release);
    }
    released_.notify_one();
  }

 private:
  static constexpr std::int64_t kWarmBytes = 512 * 1024;  // rows kept warm ahead of the loop
  static constexpr std::int64_t kWarmBatch = 16;          // rows asked for between checks
  // Swaps (about 50 us) or target copies between two top-ups of the warm rows while the
  // helper draws, and at most how many batches of rows one top-up asks for.
  static constexpr std::int64_t kDrawSlice = 4096;
  static constexpr int kWarmTopUps = 64;

  // Whether this thread is the one to draw epoch e (claims go in epoch order).
  bool claim(std::int64_t e) {
    std::int64_t expected = e;
    return claimed_.compare_exchange_strong(expected, e + 1, std::memory_order_acq_rel);
  }

  // Draws epoch e's order and its targets, calling between() after every kDrawSlice swaps
  // or copies (the helper warms rows there).
  template <class Between>
  void draw(std::int64_t e, Between&& between) {
    const auto b = static_cast<std::size_t>(e % 2);
    // The helper may be reading this buffer's old order to warm rows: mark it stale first,
    // then wait for the reader to leave (seq_cst on both sides: one of the two sees the
    // other).
    ready_[b].store(-1, std::memory_order_seq_cst);
    while (readers_[b].load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
    Index* order = buffers_[b].get();
    Shuffle<Index> shuffle(order, n_, seed_, first_epoch_ + e);
    while (!shuffle.run(kDrawSlice)) between();
    for (std::int64_t begin = 0; begin < n_; begin += kDrawSlice) {
      const std::int64_t count = std::min(kDrawSlice, n_ - begin);
      targets_in_order(targets_[b].get() + begin, y_, order + begin, count);
      between();
    }
    ready_[b].store(e, std::memory_order_release);
  }

  void draw(std::int64_t e) {
    draw(e, [] {});
  }

  // The helper: draws the next epoch's order when its buffer is free, and otherwise warms
  // the rows the loop reads next (or sleeps until a buffer is released, when not warming).
  void help() {
    std::int64_t warmed_epoch = -1, next = 0;
    for (;;) {
      const std::int64_t e = claimed_.load(std::memory_order_acquire);
      // Epoch e's buffer is free once the loop has released epoch e - 2.
      if (e < epochs_ && released_epochs_.load(std::memory_order_acquire) >= e - 1) {
        // Between slices of the draw, the rows the loop reads next are topped up: warming
        // waits for no draw (the loop's epoch uses the other buffer).
        if (claim(e)) {
          draw(e, [&] {
            if (X_) {
              for (int k = 0; k < kWarmTopUps && warm(warmed_epoch, next); ++k) {
              }
            }
          });
        }
        continue;
      }
      if (stop_.load(std::memory_order_acquire)) return;
      if (X_) {
        if (!warm(warmed_epoch, next)) std::this_thread::yield();
        continue;
      }
      if (e >= epochs_) return;
      std::unique_lock<std::mutex> lock(mutex_);
      released_.wait(lock, [&] {
        return stop_.load(std::memory_order_relaxed) ||
               released_epochs_.load(std::memory_order_relaxed) >= e - 1;
      });
    }
  }

  // Asks for up to kWarmBatch rows of the epoch in training, from warm_lead_ rows past the
  // loop to warm_rows_ beyond that; returns whether it asked for any.
  bool warm(std::int64_t& warmed_epoch, std::int64_t& next) {
    const std::int64_t t = training_.load(std::memory_order_acquire);
    if (t < 0) return false;
    const auto b = static_cast<std::size_t>(t % 2);
    readers_[b].fetch_add(1, std::memory_order_seq_cst);
    bool asked = false;
    if (ready_[b].load(std::memory_order_seq_cst) == t) {
      if (t != warmed_epoch) {
        warmed_epoch = t;
        next = 0;
      }
      const std::int64_t at = progress_.load(std::memory_order_relaxed);
      next = std::max(next, at + warm_lead_);
      const std::int64_t end = std::min({n_, at + warm_lead_ + warm_rows_, next + kWarmBatch});
      const Index* order = buffers_[b].get();
      for (; next < end; ++next) {
        prefetch_row(X_ + static_cast<std::int64_t>(order[next]) * f_, f_);
        asked = true;
      }
    }
    readers_[b].fetch_sub(1, std::memory_order_release);
    return asked;
  }

  const T* const y_;
  const std::int64_t n_;
  const std::uint64_t seed_;
  const std::int64_t first_epoch_, epochs_;
  const T* X_;  // null: no warming
  const std::int64_t f_;
  std::int64_t warm_lead_ = 0, warm_rows_ = 0;
  std::unique_ptr<Index[]> buffers_[2];
  std::unique_ptr<T[]> targets_[2];
  std::atomic<std::int64_t> ready_[2];    // the epoch whose order buffer b holds complete
  std::atomic<int> readers_[2];           // the helper reading buffer b to warm rows
  std::atomic<std::int64_t> claimed_{0};  // epochs below this are claimed
  std::atomic<std::int64_t> training_{-1};  // the epoch the loop is in, or -1
  std::atomic<std::int64_t> progress_{0};   // the row the loop is at in that epoch
  std::mutex mutex_;  // with released_: the helper's sleep when it has nothing to do
  std::condition_variable released_;
  std::atomic<std::int64_t> released_epochs_{0};  // epochs the loop is done with
  std::atomic<bool> stop_{false};
  std::thread helper_;
};

}  // namespace fastdescent::train
