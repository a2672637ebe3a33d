// One instruction-set variant of every kernel. This file is compiled once per level, each
// time with that level's compiler flags and FASTDESCENT_ARCH / FASTDESCENT_TABLE naming it.
#include <fastdescent/adagrad.hpp>
#include <fastdescent/adam.hpp>
#include <fastdescent/finite.hpp>
#include <fastdescent/kernel_table.hpp>
#include <fastdescent/rmsprop.hpp>
#include <fastdescent/sgd.hpp>
#include <fastdescent/stream.hpp>

#include <utility>

#ifndef FASTDESCENT_TABLE
#define FASTDESCENT_TABLE kernels_baseline
#endif
#define FASTDESCENT_STR2(x) #x
#define FASTDESCENT_STR(x) FASTDESCENT_STR2(x)

namespace fastdescent {
inline namespace FASTDESCENT_ARCH {
namespace {

template <class T, int Arrays, int... Written>
void fill_stream_row(void (*row[6])(std::int64_t, T* const*),
                     std::integer_sequence<int, Written...>) {
  ((row[Written] = &stream_arrays<T, Arrays, Written>), ...);
}

template <class T, int... Arrays>
void fill_stream(void (*table[5][6])(std::int64_t, T* const*),
                 std::integer_sequence<int, Arrays...>) {
  ((fill_stream_row<T, Arrays + 1>(table[Arrays],
                                   std::make_integer_sequence<int, Arrays + 2>{})),
   ...);
}

template <class T>
KernelSet<T> make_set() {
  KernelSet<T> set{};
  set.sgd = &sgd_update<T>;
  set.adagrad = &adagrad_update<T>;
  set.rmsprop = &rmsprop_update<T>;
  set.adam = &adam_update<T>;
  set.all_finite = &all_finite<T>;
  fill_stream<T>(set.stream, std::make_integer_sequence<int, 5>{});
  return set;
}

}  // namespace
}  // namespace FASTDESCENT_ARCH

const KernelTable* FASTDESCENT_TABLE() {
  static const KernelTable table{FASTDESCENT_STR(FASTDESCENT_ARCH), make_set<float>(),
                                 make_set<double>()};
  return &table;
}

}  // namespace fastdescent
