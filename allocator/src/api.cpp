// The public C and C++ entry points: argument checks and errno, then the heap's fast paths.
#include <new>

#include "api_internal.hpp"
#include "slabpool/slabpool.h"
#include "slabpool/slabpool.hpp"

using namespace slabpool::detail;

extern "C" {

void* sp_malloc(size_t size) {
  return heap_malloc(size);
}
void* sp_calloc(size_t n, size_t size) {
  return zeroed_malloc(n, size);
}
void* sp_realloc(void* p, size_t size) {
  return resize(p, size);
}
void sp_free(void* p) {
  heap_free(p);
}
void sp_free_sized(void* p, size_t size) {
  heap_free_sized(p, size);
}
void* sp_aligned_alloc(size_t alignment, size_t size) {
  return aligned_malloc(alignment, size);
}
size_t sp_usable_size(const void* p) {
  return p == nullptr ? 0 : block_usable_size(p);
}
int sp_owns(const void* p) {
  return segment_map_contains(p) ? 1 : 0;
}

}  // extern "C"

namespace slabpool {
namespace {
void* or_throw(void* p) {
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* malloc(std::size_t size) {
  return or_throw(heap_malloc(size));
}
void* calloc(std::size_t n, std::size_t size) {
  return or_throw(zeroed_malloc(n, size));
}
void* realloc(void* p, std::size_t size) {
  void* q = resize(p, size);
  if (q == nullptr && size != 0) throw std::bad_alloc();
  return q;
}
void free(void* p) noexcept {
  heap_free(p);
}
void free_sized(void* p, std::size_t size) noexcept {
  heap_free_sized(p, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) {
  return or_throw(aligned_malloc(alignment, size));
}
std::size_t usable_size(const void* p) noexcept {
  return p == nullptr ? 0 : block_usable_size(p);
}
bool owns(const void* p) noexcept {
  return segment_map_contains(p);
}

}  // namespace slabpool
