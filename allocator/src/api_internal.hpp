// The building blocks behind the public C and C++ APIs, shared with the LD_PRELOAD shim so both
// reach the allocator through exactly the same argument checks: aligned, zeroed and resized
// allocation. Callers pass only pointers this allocator handed out (or nullptr where stated).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "checked.hpp"
#include "heap.hpp"

namespace slabpool::detail {

constexpr bool is_power_of_two(std::size_t x) {
  return x != 0 && (x & (x - 1)) == 0;
}

// Smallest class at or above `size` whose blocks all fall on `alignment` (<= kUnitSize): slabs
// start on unit boundaries, so a block size that is a multiple of the alignment suffices. The
// power-of-two class at or above max(size, alignment) always qualifies.
inline unsigned aligned_class(std::size_t size, std::size_t alignment) {
  unsigned cls = size_to_class(size > alignment ? size : alignment);
  while (class_size(cls) % alignment != 0) ++cls;
  return cls;
}

// `size` bytes at `alignment`; nullptr with EINVAL when the alignment is not a power of two or
// exceeds kMaxAlignment, with ENOMEM when memory runs out.
inline void* aligned_malloc(std::size_t alignment, std::size_t size) noexcept {
  if (!is_power_of_two(alignment) || alignment > kMaxAlignment) {
    errno = EINVAL;
    return nullptr;
  }
  if (alignment <= kMinAlignment) return heap_malloc(size);
  if (alignment <= kUnitSize && size <= kMaxClassSize && alignment <= kMaxClassSize) {
    return pop_block(tls_heap, aligned_class(size, alignment), size);
  }
  // Size 0 still needs a unique block: large_alloc would compute a run of zero units.
  return large_alloc(size == 0 ? 1 : size, alignment, false);
}

// n*size zeroed bytes; nullptr with ENOMEM on overflow or when memory runs out.
inline void* zeroed_malloc(std::size_t n, std::size_t size) noexcept {
  std::size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  if (bytes > kMaxClassSize) return large_alloc(bytes, kMinAlignment, true);
  void* p = heap_malloc(bytes);
  if (p != nullptr) std::memset(p, 0, bytes);
  return p;
}

// realloc: p may be nullptr (then malloc); size 0 frees p and returns nullptr (glibc's
// behaviour). On failure returns nullptr with ENOMEM and leaves p untouched.
inline void* resize(void* p, std::size_t size) noexcept {
  if (p == nullptr) return heap_malloc(size);
  if (size == 0) {
    heap_free(p);
    return nullptr;
  }
  const std::size_t usable = block_usable_size(p);
  // Stay in place while the block fits and would not waste more than half of itself. Checked
  // mode always moves: the trailer sits right after the size the block was allocated with.
  if (size <= usable && size >= usable / 2 && !g_checked) return p;
  void* q = heap_malloc(size);
  if (q == nullptr) return nullptr;
  std::memcpy(q, p, size < usable ? size : usable);
  heap_free(p);
  return q;
}

}  // namespace slabpool::detail
