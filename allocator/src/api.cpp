// The public C and C++ entry points: argument checks and errno, then the heap's fast paths.
#include <cerrno>
#include <cstring>
#include <new>

#include "heap.hpp"
#include "slabpool/slabpool.h"
#include "slabpool/slabpool.hpp"

namespace slabpool::detail {
namespace {

constexpr bool is_power_of_two(std::size_t x) { return x != 0 && (x & (x - 1)) == 0; }

// Smallest class at or above `size` whose blocks all fall on `alignment` (<= kUnitSize): slabs
// start on unit boundaries, so a block size that is a multiple of the alignment suffices. The
// power-of-two class at or above max(size, alignment) always qualifies.
unsigned aligned_class(std::size_t size, std::size_t alignment) {
  unsigned cls = size_to_class(size > alignment ? size : alignment);
  while (class_size(cls) % alignment != 0) ++cls;
  return cls;
}

void* aligned_malloc(std::size_t alignment, std::size_t size) noexcept {
  if (!is_power_of_two(alignment) || alignment > kMaxAlignment) {
    errno = EINVAL;
    return nullptr;
  }
  if (alignment <= kMinAlignment) return heap_malloc(size);
  if (alignment <= kUnitSize && size <= kMaxClassSize && alignment <= kMaxClassSize) {
    return pop_block(tls_heap, aligned_class(size, alignment));
  }
  return large_alloc(size, alignment, false);
}

void* zeroed_malloc(std::size_t n, std::size_t size) noexcept {
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

void* resize(void* p, std::size_t size) noexcept {
  if (p == nullptr) return heap_malloc(size);
  if (size == 0) {  // glibc's behaviour: free and return null
    heap_free(p);
    return nullptr;
  }
  const std::size_t usable = block_usable_size(p);
  // Stay in place while the block fits and would not waste more than half of itself.
  if (size <= usable && size >= usable / 2) return p;
  void* q = heap_malloc(size);
  if (q == nullptr) return nullptr;
  std::memcpy(q, p, size < usable ? size : usable);
  heap_free(p);
  return q;
}

}  // namespace
}  // namespace slabpool::detail

using namespace slabpool::detail;

extern "C" {

void* sp_malloc(size_t size) { return heap_malloc(size); }
void* sp_calloc(size_t n, size_t size) { return zeroed_malloc(n, size); }
void* sp_realloc(void* p, size_t size) { return resize(p, size); }
void sp_free(void* p) { heap_free(p); }
void sp_free_sized(void* p, size_t /*size*/) { heap_free(p); }
void* sp_aligned_alloc(size_t alignment, size_t size) { return aligned_malloc(alignment, size); }
size_t sp_usable_size(const void* p) { return p == nullptr ? 0 : block_usable_size(p); }
int sp_owns(const void* p) { return segment_map_contains(p) ? 1 : 0; }

}  // extern "C"

namespace slabpool {
namespace {
void* or_throw(void* p) {
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* malloc(std::size_t size) { return or_throw(heap_malloc(size)); }
void* calloc(std::size_t n, std::size_t size) { return or_throw(zeroed_malloc(n, size)); }
void* realloc(void* p, std::size_t size) {
  void* q = resize(p, size);
  if (q == nullptr && size != 0) throw std::bad_alloc();
  return q;
}
void free(void* p) noexcept { heap_free(p); }
void free_sized(void* p, std::size_t /*size*/) noexcept { heap_free(p); }
void* aligned_alloc(std::size_t alignment, std::size_t size) {
  return or_throw(aligned_malloc(alignment, size));
}
std::size_t usable_size(const void* p) noexcept { return p == nullptr ? 0 : block_usable_size(p); }
bool owns(const void* p) noexcept { return segment_map_contains(p); }

}  // namespace slabpool
