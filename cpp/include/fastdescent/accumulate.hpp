// Mini-batch gradient accumulation: acc += scale * grad over many tensors, and the mean over
// the rows of a (batch, n) matrix of per-sample gradients.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "loop.hpp"
#include "options.hpp"

#if defined(FASTDESCENT_OPENMP)
#include <omp.h>
#endif

namespace fastdescent {
inline namespace FASTDESCENT_ARCH {

// Arrays: acc, grad. acc = acc + T(scale) * grad (one fused multiply-add where the level
// has FMA, so within one rounding of the NumPy reference's `acc += T(scale) * grad`).
template <class T>
struct Accumulate {
  using value_type = T;
  using Options = AccumulateOptions;

  struct Coefficients {
    T scale;
  };

  static Coefficients coefficients(const Options& o) { return {T(o.scale)}; }

  static void run(const Coefficients& c, std::int64_t begin, std::int64_t end, T* const* a) {
    T* acc = a[0];
    const T* grad = a[1];
    const T scale = c.scale;
    for_range(begin, end, [=](std::int64_t i) { acc[i] = acc[i] + scale * grad[i]; });
  }
};

// Columns per block of row_mean: the block's running sums (doubles, 128 KB) stay in L2 while
// every row streams through it; a float32 row segment is 16 pages, long enough for the
// hardware prefetcher (a block of 1024 columns, one page per row, ran 2x slower).
inline constexpr std::int64_t kRowMeanBlock = 16384;

// out[j] = (sum over r of matrix[r, j]) / rows for j in [begin, end). Rows are added in
// order, in double for either T (exact for float32 input up to the final rounding, and the
// same result for any split into blocks or threads), then divided once. Four rows go into
// one pass over the running sums, ((((s + a) + b) + c) + d): the same additions in the same
// order as one row at a time, with a quarter of the loads and stores of the sums.
template <class T>
void row_mean_columns(const T* matrix, std::int64_t rows, std::int64_t cols, T* out,
                      std::int64_t begin, std::int64_t end) {
  std::vector<double> sums(static_cast<std::size_t>(std::min(kRowMeanBlock, end - begin)));
  double* const s = sums.data();
  const double count = static_cast<double>(rows);
  for (std::int64_t block = begin; block < end; block += kRowMeanBlock) {
    const std::int64_t width = std::min(kRowMeanBlock, end - block);
    const T* first = matrix + block;
    for_range(0, width, [=](std::int64_t j) { s[j] = static_cast<double>(first[j]); });
    std::int64_t r = 1;
    for (; r + 4 <= rows; r += 4) {
      const T* a = matrix + r * cols + block;
      const T* b = a + cols;
      const T* c = b + cols;
      const T* d = c + cols;
      for_range(0, width, [=](std::int64_t j) {
        s[j] = (((s[j] + static_cast<double>(a[j])) + static_cast<double>(b[j])) +
                static_cast<double>(c[j])) +
               static_cast<double>(d[j]);
      });
    }
    for (; r < rows; ++r) {
      const T* row = matrix + r * cols + block;
      for_range(0, width, [=](std::int64_t j) { s[j] += static_cast<double>(row[j]); });
    }
    T* o = out + block;
    for_range(0, width, [=](std::int64_t j) { o[j] = static_cast<T>(s[j] / count); });
  }
}

// The mean over the rows of a C-contiguous (rows, cols) matrix into out (cols,), rows >= 1.
// Threads split the columns (shares start on multiples of kShareAlign columns); a thread
// gets at least kParallelGrain elements and kShareAlign columns. The result does not depend
// on the number of threads.
template <class T>
void row_mean(const T* matrix, std::int64_t rows, std::int64_t cols, T* out,
              int max_threads) {
  const int threads = static_cast<int>(
      std::min<std::int64_t>(threads_for(rows * cols, max_threads), cols / kShareAlign));
  if (threads <= 1) {
    row_mean_columns(matrix, rows, cols, out, 0, cols);
    return;
  }
#if defined(FASTDESCENT_OPENMP)
#pragma omp parallel num_threads(threads)
  {
    const std::int64_t t = omp_get_thread_num();
    const std::int64_t nt = omp_get_num_threads();
    const std::int64_t lo = t == 0 ? 0 : (cols * t / nt) / kShareAlign * kShareAlign;
    const std::int64_t hi = t + 1 == nt ? cols : (cols * (t + 1) / nt) / kShareAlign * kShareAlign;
    if (lo < hi) row_mean_columns(matrix, rows, cols, out, lo, hi);
  }
#endif
}

}  // namespace FASTDESCENT_ARCH
}  // namespace fastdescent
