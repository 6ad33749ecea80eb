// Ring-buffer arithmetic shared by the CPU and CUDA kernels of memory_bank_push.
#pragma once

#include <c10/macros/Macros.h>

#include <cstdint>

namespace noisyseg::memory_bank {

// Slot of the key with 0-based `rank` among the `count` keys its class receives in one push, or -1
// when a newer key of the same push overwrites it (only the newest `capacity` survive). The
// survivors fill slots head, head+1, ... (mod capacity) in arrival order, so after the push the
// class's oldest key sits at (new_head - new_size) mod capacity.
C10_HOST_DEVICE inline int64_t ring_slot(int64_t head, int64_t rank, int64_t count, int64_t capacity) {
  const int64_t drop = count > capacity ? count - capacity : 0;
  if (rank < drop) return -1;
  return (head + rank - drop) % capacity;
}

C10_HOST_DEVICE inline void advance(int64_t& head, int64_t& size, int64_t count, int64_t capacity) {
  const int64_t kept = count < capacity ? count : capacity;
  head = (head + kept) % capacity;
  size = size + count < capacity ? size + count : capacity;
}

}  // namespace noisyseg::memory_bank
