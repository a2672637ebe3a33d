// Asking for memory before it is read: where a loop knows its next addresses long before
// the hardware prefetcher could guess them (shuffled rows, many small tensors).
#pragma once

#include <cstdint>

namespace fastdescent {

// Asks for every cache line of [start, start + bytes) into L1: one line every 64 bytes from
// its start, and the line of its last byte (NumPy's large arrays start 16 bytes into a
// page, so a 256-byte row spans 5 lines). Call it from a loop that does more than prefetch:
// gcc 12 deleted a loop whose only effect was __builtin_prefetch (no prefetch instruction
// left in the object code).
inline void prefetch_bytes(const void* start, std::int64_t bytes) {
#if defined(__GNUC__)
  if (bytes <= 0) return;
  const char* first = static_cast<const char*>(start);
  for (std::int64_t offset = 0; offset < bytes; offset += 64) {
    __builtin_prefetch(first + offset, 0, 3);
  }
  __builtin_prefetch(first + bytes - 1, 0, 3);
#else
  (void)start;
  (void)bytes;
#endif
}

// Asks for the line of `address`, to be written.
template <class T>
inline void prefetch_write(T* address) {
#if defined(__GNUC__)
  __builtin_prefetch(address, 1, 3);
#else
  (void)address;
#endif
}

}  // namespace fastdescent
