// Asking for memory before it is read: where a loop knows its next addresses long before
// the hardware prefetcher could guess them (shuffled rows, many small tensors).
#pragma once

#include <cstdint>

namespace fastdescent {

// Asks for the line of `address`, to be read. On x86 an asm statement, not
// __builtin_prefetch: gcc 12 deletes loops whose only effect is __builtin_prefetch (they
// have no side effect it must keep), and did so in some inlined copies of prefetch_bytes but
// not others; a volatile asm statement it never deletes.
inline void prefetch_read(const void* address) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(address)));
#elif defined(__GNUC__)
  __builtin_prefetch(address, 0, 3);
#else
  (void)address;
#endif
}

// Asks for every cache line of [start, start + bytes) into L1: one line every 64 bytes from
// its start, and the line of its last byte (NumPy's large arrays start 16 bytes into a
// page, so a 256-byte row spans 5 lines).
inline void prefetch_bytes(const void* start, std::int64_t bytes) {
  const char* first = static_cast<const char*>(start);
  for (std::int64_t offset = 0; offset < bytes; offset += 64) prefetch_read(first + offset);
  if (bytes > 0) prefetch_read(first + bytes - 1);
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
