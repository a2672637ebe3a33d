// One instruction-set variant of every kernel. This file is compiled once per level, each
// time with that level's compiler flags and FASTDESCENT_ARCH / FASTDESCENT_TABLE naming it.
#include <fastdescent/accumulate.hpp>
#include <fastdescent/adagrad.hpp>
#include <fastdescent/adam.hpp>
#include <fastdescent/finite.hpp>
#include <fastdescent/gradient.hpp>
#include <fastdescent/kernel_table.hpp>
#include <fastdescent/rmsprop.hpp>
#include <fastdescent/sgd.hpp>
#include <fastdescent/stream.hpp>
#include <fastdescent/transforms.hpp>

#include <utility>

#ifndef FASTDESCENT_TABLE
#define FASTDESCENT_TABLE kernels_baseline
#endif
#define FASTDESCENT_STR2(x) #x
#define FASTDESCENT_STR(x) FASTDESCENT_STR2(x)

namespace fastdescent {
inline namespace FASTDESCENT_ARCH {
namespace {

template <class T, int Arrays, int Written, bool SqrtDiv>
void stream_slots(const Slot<T>* slots, std::size_t count, int max_threads) {
  const StreamOptions options{};
  step_slots<Stream<T, Arrays, Written, SqrtDiv>>(&options, 1, slots, count, max_threads);
}

template <class T, bool SqrtDiv, int Arrays, int... Written>
void fill_stream_row(void (*row[kMaxArrays + 1])(const Slot<T>*, std::size_t, int),
                     std::integer_sequence<int, Written...>) {
  ((row[Written] = &stream_slots<T, Arrays, Written, SqrtDiv>), ...);
}

template <class T, bool SqrtDiv, int... Index>
void fill_stream(void (*table[kMaxArrays][kMaxArrays + 1])(const Slot<T>*, std::size_t, int),
                 std::integer_sequence<int, Index...>) {
  // Row Index is the probe over Index + 1 arrays, writing 0 .. Index + 1 of them.
  (fill_stream_row<T, SqrtDiv, Index + 1>(table[Index],
                                          std::make_integer_sequence<int, Index + 2>{}),
   ...);
}

template <class T>
KernelSet<T> make_set() {
  KernelSet<T> set{};
  set.sgd = &step_slots<SGD<T>>;
  set.adagrad = &step_slots<Adagrad<T>>;
  set.rmsprop = &step_slots<RMSprop<T>>;
  set.adam = &step_slots<Adam<T>>;
  set.accumulate = &step_slots<Accumulate<T>>;
  set.scale = &step_slots<Scale<T>>;
  set.clip = &step_slots<Clip<T>>;
  set.ema = &step_slots<EMA<T>>;
  set.sum_of_squares = &sum_of_squares<T>;
  set.row_mean = &row_mean<T>;
  set.first_nonfinite = &first_nonfinite<T>;
  set.rows_gradient = &train::rows_gradient<T>;
  fill_stream<T, false>(set.stream, std::make_integer_sequence<int, kMaxArrays>{});
  fill_stream<T, true>(set.stream_sqrt_div, std::make_integer_sequence<int, kMaxArrays>{});
  return set;
}

Float16KernelSet make_float16_set() {
  Float16KernelSet set{};
  set.sgd = &step_slots<SGD<float>, float16>;
  set.adagrad = &step_slots<Adagrad<float>, float16>;
  set.rmsprop = &step_slots<RMSprop<float>, float16>;
  set.adam = &step_slots<Adam<float>, float16>;
  set.first_nonfinite = &first_nonfinite<float16>;
  return set;
}

}  // namespace
}  // namespace FASTDESCENT_ARCH

const KernelTable* FASTDESCENT_TABLE() {
  static const KernelTable table{FASTDESCENT_STR(FASTDESCENT_ARCH), make_set<float>(),
                                 make_set<double>(), make_float16_set()};
  return &table;
}

}  // namespace fastdescent
