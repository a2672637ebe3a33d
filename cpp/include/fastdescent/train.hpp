// Native epoch loops for linear models: the per-batch gradient of the loss, read straight
// from the rows of X named by a (shuffled) order, and the optimizer's own kernel applied to
// the weights and the intercept after every mini-batch. No Python types, no allocation in
// the loop.
//
// Conventions (the same in the Python fallback, fastdescent.models._loop):
//   z_i = W x_i + b                                  W is (k, f) row-major, b is (k,)
//   squared:  loss_i = (z_i - y_i)^2,               dL/dz = 2 (z_i - y_i)
//   logistic: loss_i = log(1 + e^z) - y_i z_i,      dL/dz = sigmoid(z_i) - y_i   (y in {0, 1})
//   softmax:  loss_i = logsumexp(z_i) - z_i[y_i],   dL/dz_c = softmax(z_i)_c - [c == y_i]
//   batch gradient: the mean over the batch's rows, plus alpha W (the penalty alpha/2 |W|^2;
//   the intercept is not penalized).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "shuffle.hpp"

#if defined(FASTDESCENT_OPENMP)
#include <omp.h>
#endif

namespace fastdescent::train {

enum class Loss : int { squared = 0, logistic = 1, softmax = 2 };

template <class T>
struct Problem {
  const T* X = nullptr;  // n rows of f features, row-major
  std::int64_t n = 0, f = 0;
  int k = 1;             // outputs: 1, or the number of classes for softmax
  Loss loss = Loss::squared;
  double alpha = 0;      // L2 penalty on W
  T* W = nullptr;        // (k, f)
  T* b = nullptr;        // (k,)
  T* gW = nullptr;       // gradient of W, written by batch_gradient
  T* gb = nullptr;       // gradient of b
};

template <class T>
inline T dot(const T* x, const T* w, std::int64_t f) {
  // Four partial sums: the loop vectorizes without reassociation flags.
  T s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  std::int64_t j = 0;
  for (; j + 4 <= f; j += 4) {
    s0 += x[j] * w[j];
    s1 += x[j + 1] * w[j + 1];
    s2 += x[j + 2] * w[j + 2];
    s3 += x[j + 3] * w[j + 3];
  }
  for (; j < f; ++j) s0 += x[j] * w[j];
  return (s0 + s1) + (s2 + s3);
}

template <class T>
inline void axpy(T* out, T a, const T* x, std::int64_t f) {
  for (std::int64_t j = 0; j < f; ++j) out[j] += a * x[j];
}

// Asks for every cache line of a row into L1 (Locality 3) or L2 (Locality 1): one line
// every 64 bytes from its start, and the line of its last byte (NumPy's large arrays start
// 16 bytes into a page, so a 256-byte row spans 5 lines). Call it from a loop that does
// more than prefetch: gcc 12 deleted a loop whose only effect was __builtin_prefetch (no
// prefetch instruction left in the object code).
template <int Locality, class T>
inline void prefetch_row(const T* row, std::int64_t f) {
#if defined(__GNUC__)
  const char* start = reinterpret_cast<const char*>(row);
  const std::int64_t bytes = f * static_cast<std::int64_t>(sizeof(T));
  for (std::int64_t offset = 0; offset < bytes; offset += 64) {
    __builtin_prefetch(start + offset, 0, Locality);
  }
  __builtin_prefetch(start + bytes - 1, 0, Locality);
#else
  (void)row;
  (void)f;
#endif
}

// Rows in random order are latency bound: a row's lines are asked for into L2 kPrefetchFar
// rows ahead and into L1 kPrefetchNear rows ahead. Asking for all of
// them into L1 at once overflows the L1 miss buffers and stalls the loop on the prefetches
// (a C++ microbenchmark of one shuffled epoch on a shared 2-vCPU EPYC: 16 rows into L1
// about 15% slower than 6 into L1 and 24 into L2, in 5 of 6 interleaved rounds).
inline constexpr std::int64_t kPrefetchNear = 6;
inline constexpr std::int64_t kPrefetchFar = 24;

// Adds the gradient of the summed loss over rows order[begin..end) (identity order when
// null), whose targets are y[begin..end), to gW and gb (k * f and k elements); returns the
// sum of the rows' losses. `z` is scratch of k elements.
template <class T, class Index>
double accumulate_rows(const Problem<T>& p, const Index* order, const T* y_in_order,
                       std::int64_t begin, std::int64_t end, T* gW, T* gb, T* z) {
  const std::int64_t f = p.f;
  const int k = p.k;
  double loss = 0;
  auto row_of = [&](std::int64_t i) -> std::int64_t {
    return order ? static_cast<std::int64_t>(order[i]) : i;
  };
  for (std::int64_t i = begin; i < end; ++i) {
    // Ahead across the end of the batch too: the rows stream in over the optimizer's step.
    if (order) {
      if (i + kPrefetchFar < p.n) prefetch_row<1>(p.X + row_of(i + kPrefetchFar) * f, f);
      if (i + kPrefetchNear < p.n) prefetch_row<3>(p.X + row_of(i + kPrefetchNear) * f, f);
    }
    const T* x = p.X + row_of(i) * f;
    const T y = y_in_order[i];
    if (p.loss == Loss::squared) {
      const T residual = dot(x, p.W, f) + p.b[0] - y;
      loss += double(residual) * double(residual);
      const T d = T(2) * residual;
      axpy(gW, d, x, f);
      gb[0] += d;
    } else if (p.loss == Loss::logistic) {
      const T zz = dot(x, p.W, f) + p.b[0];
      // log(1 + e^z) - y z, and sigmoid(z), without overflow.
      const T e = std::exp(-std::abs(zz));
      loss += double(std::max(zz, T(0)) - y * zz + std::log1p(e));
      const T sigmoid = zz >= 0 ? T(1) / (T(1) + e) : e / (T(1) + e);
      const T d = sigmoid - y;
      axpy(gW, d, x, f);
      gb[0] += d;
    } else {
      T top = -INFINITY;
      for (int c = 0; c < k; ++c) {
        z[c] = dot(x, p.W + c * f, f) + p.b[c];
        top = std::max(top, z[c]);
      }
      T sum = 0;
      for (int c = 0; c < k; ++c) {
        z[c] = std::exp(z[c] - top);
        sum += z[c];
      }
      const int label = static_cast<int>(y);
      // loss = logsumexp(z) - z[label] = log(sum) - log(exp(z[label] - top))
      loss += double(std::log(sum) - std::log(z[label]));
      const T inv = T(1) / sum;
      for (int c = 0; c < k; ++c) {
        const T d = z[c] * inv - (c == label ? T(1) : T(0));
        axpy(gW + c * f, d, x, f);
        gb[c] += d;
      }
    }
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
// gradient, then update(batch) (the optimizer's kernel over W and b), the rows taken in
// `rows.order` (null: their stored order) with their targets `rows.y` in that order. The rows of a batch are split across up to `threads` threads (each sums its
// share; one thread adds the shares and runs the update between two barriers). Returns the
// mean of the rows' losses over the epoch, each taken before its batch's update, plus the
// penalty at the end of the epoch.
template <class T, class Index, class Update>
double run_epoch(const Problem<T>& p, const Rows<Index, T>& rows, std::int64_t batch_size,
                 int threads, Update&& update) {
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
    std::vector<T> z(static_cast<std::size_t>(p.k));
    T* gW = partials.data() + t * m;
    T* gb = gW + p.k * p.f;
    std::int64_t lo, hi;
    for (std::int64_t batch = 0; batch < batches; ++batch) {
      share(batch, t, parts, lo, hi);
      std::fill(gW, gW + m, T(0));
      losses[t] += accumulate_rows(p, rows.order, rows.y, lo, hi, gW, gb, z.data());
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
