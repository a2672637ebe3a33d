// The gradient of a linear model's loss over rows stored one after another: the part of
// the native epoch loop (train.hpp) that does arithmetic, compiled once per SIMD level into
// the kernel table. No Python types, no allocation.
//
// Conventions (the same in the Python fallback, fastdescent.models._base._python_epoch):
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

// Each SIMD level's kernel table instantiates these templates in its own namespace (as
// loop.hpp's), so that no level's code can stand in for another's at link time.
#ifndef FASTDESCENT_ARCH
#define FASTDESCENT_ARCH baseline
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
  T* gW = nullptr;       // gradient of W, written by finish_gradient (train.hpp)
  T* gb = nullptr;       // gradient of b
};

inline namespace FASTDESCENT_ARCH {

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

// Accumulators of gW held in registers while the rows stream past: 8 vectors of the
// widest level compiled (16 at baseline would leave no register for the rows).
#if defined(__AVX512F__)
inline constexpr std::int64_t kColumnBlockBytes = 512;
#elif defined(__AVX__)
inline constexpr std::int64_t kColumnBlockBytes = 256;
#else
inline constexpr std::int64_t kColumnBlockBytes = 128;
#endif

// g[j0 .. j0 + Width) += sum over the rows i of d[i * d_stride] * rows[i][j0 + j], each
// column summed in row order (so the same as adding one row at a time), the sums held in
// registers.
template <std::int64_t Width, class T>
inline void add_column_block(T* g, const T* d, std::int64_t d_stride, const T* rows,
                             std::int64_t count, std::int64_t f, std::int64_t j0) {
  T sums[Width];
  for (std::int64_t j = 0; j < Width; ++j) sums[j] = g[j0 + j];
  for (std::int64_t i = 0; i < count; ++i) {
    const T di = d[i * d_stride];
    const T* x = rows + i * f + j0;
    for (std::int64_t j = 0; j < Width; ++j) sums[j] += di * x[j];
  }
  for (std::int64_t j = 0; j < Width; ++j) g[j0 + j] = sums[j];
}

// g (f) += sum over the rows i of d[i * d_stride] * rows[i]: blocks of columns as wide as
// the registers allow, then a half and a quarter block, then the columns left over in one
// pass over the rows (sums in memory).
template <class T>
void add_weighted_rows(T* g, const T* d, std::int64_t d_stride, const T* rows,
                       std::int64_t count, std::int64_t f) {
  constexpr std::int64_t kWidth = kColumnBlockBytes / static_cast<std::int64_t>(sizeof(T));
  std::int64_t j0 = 0;
  for (; j0 + kWidth <= f; j0 += kWidth) {
    add_column_block<kWidth>(g, d, d_stride, rows, count, f, j0);
  }
  if (j0 + kWidth / 2 <= f) {
    add_column_block<kWidth / 2>(g, d, d_stride, rows, count, f, j0);
    j0 += kWidth / 2;
  }
  if (j0 + kWidth / 4 <= f) {
    add_column_block<kWidth / 4>(g, d, d_stride, rows, count, f, j0);
    j0 += kWidth / 4;
  }
  if (j0 == f) return;
  for (std::int64_t i = 0; i < count; ++i) {
    const T di = d[i * d_stride];
    const T* x = rows + i * f;
    for (std::int64_t j = j0; j < f; ++j) g[j] += di * x[j];
  }
}

// Adds the gradient of the summed loss over `count` rows (stored one after another at
// `rows`) whose targets are y[0..count) to gW and gb (k * f and k elements); returns the sum
// of the rows' losses. `dz` is scratch of count * k elements: first every row's dL/dz (the
// rows' dot products are independent, so they overlap), then gW += dz^T rows, a block of
// columns at a time. Every sum runs in row order, as when the rows are added one by one.
template <class T>
double rows_gradient(const Problem<T>& p, const T* rows, const T* y, std::int64_t count,
                     T* gW, T* gb, T* dz) {
  const std::int64_t f = p.f;
  const int k = p.k;
  double loss = 0;
  for (std::int64_t i = 0; i < count; ++i) {
    const T* x = rows + i * f;
    const T target = y[i];
    T* d = dz + i * k;
    if (p.loss == Loss::squared) {
      const T residual = dot(x, p.W, f) + p.b[0] - target;
      loss += double(residual) * double(residual);
      d[0] = T(2) * residual;
    } else if (p.loss == Loss::logistic) {
      const T zz = dot(x, p.W, f) + p.b[0];
      // log(1 + e^z) - y z, and sigmoid(z), without overflow.
      const T e = std::exp(-std::abs(zz));
      loss += double(std::max(zz, T(0)) - target * zz + std::log1p(e));
      const T sigmoid = zz >= 0 ? T(1) / (T(1) + e) : e / (T(1) + e);
      d[0] = sigmoid - target;
    } else {
      T top = -INFINITY;
      for (int c = 0; c < k; ++c) {
        d[c] = dot(x, p.W + c * f, f) + p.b[c];
        top = std::max(top, d[c]);
      }
      T sum = 0;
      for (int c = 0; c < k; ++c) {
        d[c] = std::exp(d[c] - top);
        sum += d[c];
      }
      const int label = static_cast<int>(target);
      // loss = logsumexp(z) - z[label] = log(sum) - log(exp(z[label] - top))
      loss += double(std::log(sum) - std::log(d[label]));
      const T inv = T(1) / sum;
      for (int c = 0; c < k; ++c) d[c] = d[c] * inv - (c == label ? T(1) : T(0));
    }
  }
  for (int c = 0; c < k; ++c) {
    add_weighted_rows(gW + c * f, dz + c, k, rows, count, f);
    for (std::int64_t i = 0; i < count; ++i) gb[c] += dz[i * k + c];
  }
  return loss;
}

}  // namespace FASTDESCENT_ARCH
}  // namespace fastdescent::train
