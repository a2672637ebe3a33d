// Native epoch loops for linear models: the rows of X in a (shuffled) order, each batch's
// gradient (gradient.hpp, through the kernel table of the CPU's SIMD level), and the
// optimizer's own kernel applied to the weights and the intercept after every mini-batch.
// No Python types, no allocation in the loop.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gradient.hpp"
#include "rows.hpp"
#include "shuffle.hpp"

#if defined(FASTDESCENT_OPENMP)
#include <omp.h>
#endif

namespace fastdescent::train {

// The gradient over rows order[begin..end) of X (stored order when `order` is null), whose
// targets are y[begin..end) (`rows_in_order`, which is told the position reached), by
// `rows_gradient` (a kernel table's, for the CPU's SIMD level): shuffled rows are gathered
// kGatherBytes at a time into `buffer` first, or read in place when they are long (see
// gather_rows). `dz` is the scratch rows_gradient needs.
template <class T, class Index, class RowsGradient>
double ordered_rows_gradient(const Problem<T>& p, const Rows<Index, T>& rows_in_order,
                             std::int64_t begin, std::int64_t end, T* gW, T* gb,
                             RowsGradient&& rows_gradient, std::vector<T>& buffer,
                             std::vector<T>& dz) {
  const Index* order = rows_in_order.order;
  const T* y_in_order = rows_in_order.y;
  std::atomic<std::int64_t>* progress = rows_in_order.progress;
  const std::int64_t row_bytes = p.f * static_cast<std::int64_t>(sizeof(T));
  if (order && row_bytes >= kGatherMaxRowBytes) {
    if (dz.size() < static_cast<std::size_t>(p.k)) dz.resize(static_cast<std::size_t>(p.k));
    double loss = 0;
    for (std::int64_t i = begin; i < end; ++i) {
      if (progress) progress->store(i, std::memory_order_relaxed);
      if (i + 1 < p.n) prefetch_row(p.X + static_cast<std::int64_t>(order[i + 1]) * p.f, p.f);
      const T* row = p.X + static_cast<std::int64_t>(order[i]) * p.f;
      loss += rows_gradient(p, row, y_in_order + i, 1, gW, gb, dz.data());
    }
    return loss;
  }
  const std::int64_t chunk = gather_chunk(row_bytes);
  const std::int64_t rows = std::min(chunk, std::max<std::int64_t>(end - begin, 0));
  if (dz.size() < static_cast<std::size_t>(rows * p.k)) {
    dz.resize(static_cast<std::size_t>(rows * p.k));
  }
  if (order && buffer.size() < static_cast<std::size_t>(rows * p.f)) {
    buffer.resize(static_cast<std::size_t>(rows * p.f));
  }
  double loss = 0;
  for (std::int64_t lo = begin; lo < end; lo += chunk) {
    const std::int64_t hi = std::min(end, lo + chunk);
    const T* data = p.X + lo * p.f;
    if (progress) progress->store(lo, std::memory_order_relaxed);
    if (order) {
      gather_rows(buffer.data(), p.X, p.n, p.f, order, lo, hi);
      data = buffer.data();
    }
    loss += rows_gradient(p, data, y_in_order + lo, hi - lo, gW, gb, dz.data());
  }
  return loss;
}

// The batch's gradient from per-thread partial sums: mean over `rows` plus alpha W.
template <class T>
void finish_gradient(const Problem<T>& p, const T* partials, int parts, std::int64_t rows) {
  const std::int64_t m = p.k * p.f + p.k;
  const T scale = T(1) / T(rows);
  const T alpha = T(p.alpha);
  for (std::int64_t j = 0; j < m; ++j) {
    T s = partials[j];
    for (int t = 1; t < parts; ++t) s += partials[t * m + j];
    if (j < p.k * p.f) {
      p.gW[j] = s * scale + alpha * p.W[j];
    } else {
      p.gb[j - p.k * p.f] = s * scale;
    }
  }
}

// The penalty term alpha/2 |W|^2.
template <class T>
double penalty(const Problem<T>& p) {
  if (p.alpha == 0) return 0;
  double s = 0;
  for (std::int64_t j = 0; j < p.k * p.f; ++j) s += double(p.W[j]) * double(p.W[j]);
  return 0.5 * p.alpha * s;
}

// One epoch: for each mini-batch of `batch_size` rows (the last one may be smaller) the
// gradient (by rows_gradient, gradient.hpp's or a kernel table's), then update(batch) (the
// optimizer's kernel over W and b), the rows taken in `rows.order` (null: their stored
// order) with their targets `rows.y` in that order. The rows of a batch are split across up
// to `threads` threads (each sums its share; one thread adds the shares and runs the update
// between two barriers). Returns the mean of the rows' losses over the epoch, each taken
// before its batch's update, plus the penalty at the end of the epoch.
template <class T, class Index, class RowsGradient, class Update>
double run_epoch(const Problem<T>& p, const Rows<Index, T>& rows, std::int64_t batch_size,
                 int threads, RowsGradient&& rows_gradient, Update&& update) {
  // Fewer than 64 rows per thread: a barrier costs more than the rows.
  threads = static_cast<int>(std::max<std::int64_t>(
      1, std::min<std::int64_t>(threads, batch_size / 64)));
  const std::int64_t m = p.k * p.f + p.k;
  std::vector<T> partials(static_cast<std::size_t>(m * threads));
  std::vector<double> losses(static_cast<std::size_t>(threads), 0.0);
  const std::int64_t batches = (p.n + batch_size - 1) / batch_size;
  auto share = [&](std::int64_t batch, int t, int parts, std::int64_t& lo, std::int64_t& hi) {
    const std::int64_t begin = batch * batch_size;
    const std::int64_t count = std::min(p.n, begin + batch_size) - begin;
    lo = begin + count * t / parts;
    hi = begin + count * (t + 1) / parts;
  };
  auto body = [&](int t, int parts) {
    std::vector<T> gathered, dz;  // this thread's shuffled rows in order, their dL/dz
    T* gW = partials.data() + t * m;
    T* gb = gW + p.k * p.f;
    std::int64_t lo, hi;
    for (std::int64_t batch = 0; batch < batches; ++batch) {
      share(batch, t, parts, lo, hi);
      std::fill(gW, gW + m, T(0));
      losses[t] += ordered_rows_gradient(p, rows, lo, hi, gW, gb, rows_gradient, gathered, dz);
      if (parts == 1) {
        finish_gradient(p, partials.data(), 1, hi - lo);
        update(batch);
        continue;
      }
#if defined(FASTDESCENT_OPENMP)
#pragma omp barrier
      if (t == 0) {
        const std::int64_t begin = batch * batch_size;
        finish_gradient(p, partials.data(), parts, std::min(p.n, begin + batch_size) - begin);
        update(batch);
      }
#pragma omp barrier
#endif
    }
  };
#if defined(FASTDESCENT_OPENMP)
  if (threads > 1) {
#pragma omp parallel num_threads(threads)
    body(omp_get_thread_num(), omp_get_num_threads());
  } else {
    body(0, 1);
  }
#else
  body(0, 1);
#endif
  double loss = 0;
  for (double l : losses) loss += l;
  return loss / double(p.n) + penalty(p);
}

}  // namespace fastdescent::train
