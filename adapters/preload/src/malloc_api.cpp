// The C allocation functions the shim exports in place of glibc's, with glibc's semantics for
// every edge case (errno values, zero sizes, page rounding, alignment checks). Compiled without
// exceptions: nothing here can throw, and the C callers would not expect it.
#include <malloc.h>
#include <stdlib.h>

#include <cstdint>

#include "shim.hpp"

using namespace slabpool::detail;
using namespace slabpool::preload;

namespace {

// memalign's rules as glibc (2.36) applies them: small alignments are malloc's, alignments that
// are not powers of two are rounded up to the next one, and only impossible ones fail.
void* memalign_rules(std::size_t alignment, std::size_t size) noexcept {
  if (alignment <= kMinAlignment) return heap_malloc(size);
  if (alignment > SIZE_MAX / 2 + 1) {
    errno = EINVAL;
    return nullptr;
  }
  if (!is_power_of_two(alignment)) alignment = std::size_t{1} << (64 - __builtin_clzll(alignment));
  return shim_aligned_alloc(alignment, size);
}

}  // namespace

extern "C" {

// C23's free_sized and free_aligned_sized are not declared by glibc 2.36's headers.
SLABPOOL_SHIM_EXPORT void free_sized(void* p, size_t size) noexcept;
SLABPOOL_SHIM_EXPORT void free_aligned_sized(void* p, size_t alignment, size_t size) noexcept;
// glibc still exports cfree for old binaries; without ours they would reach glibc's free.
SLABPOOL_SHIM_EXPORT void cfree(void* p) noexcept;

SLABPOOL_SHIM_EXPORT void* malloc(size_t size) noexcept {
  return heap_malloc(size);
}

SLABPOOL_SHIM_EXPORT void free(void* p) noexcept {
  shim_free(p, "free");
}

SLABPOOL_SHIM_EXPORT void* calloc(size_t n, size_t size) noexcept {
  return zeroed_malloc(n, size);
}

SLABPOOL_SHIM_EXPORT void* realloc(void* p, size_t size) noexcept {
  if (p == nullptr || owns(p)) [[likely]]
    return resize(p, size);
  return realloc_outside_segments(p, size);
}

SLABPOOL_SHIM_EXPORT void* reallocarray(void* p, size_t n, size_t size) noexcept {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;  // p stays valid, as with a failed realloc
    return nullptr;
  }
  return realloc(p, bytes);
}

SLABPOOL_SHIM_EXPORT int posix_memalign(void** out, size_t alignment, size_t size) noexcept {
  // POSIX: a power of two and a multiple of sizeof(void*); *out is left alone on every failure.
  if (alignment % sizeof(void*) != 0 || !is_power_of_two(alignment)) return EINVAL;
  const int saved_errno = errno;  // POSIX reports through the return value only
  void* p = shim_aligned_alloc(alignment, size);
  errno = saved_errno;
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}

// C17 (DR 460) and glibc from 2.38 on: the alignment must be a power of two, else EINVAL. glibc
// 2.36 still treated aligned_alloc as memalign; no program can rely on that across versions.
SLABPOOL_SHIM_EXPORT void* aligned_alloc(size_t alignment, size_t size) noexcept {
  return shim_aligned_alloc(alignment, size);
}

SLABPOOL_SHIM_EXPORT void* memalign(size_t alignment, size_t size) noexcept {
  return memalign_rules(alignment, size);
}

SLABPOOL_SHIM_EXPORT void* valloc(size_t size) noexcept {
  return shim_aligned_alloc(page_size(), size);
}

SLABPOOL_SHIM_EXPORT void* pvalloc(size_t size) noexcept {
  const size_t page = page_size();
  size_t rounded;
  if (__builtin_add_overflow(size, page - 1, &rounded)) {
    errno = ENOMEM;
    return nullptr;
  }
  rounded &= ~(page - 1);
  // pvalloc(0) still owns a whole page, as with glibc.
  return shim_aligned_alloc(page, rounded == 0 ? page : rounded);
}

SLABPOOL_SHIM_EXPORT size_t malloc_usable_size(void* p) noexcept {
  return shim_usable_size(p);
}

void free_sized(void* p, size_t size) noexcept {
  shim_free_sized(p, size, "free_sized");
}

void free_aligned_sized(void* p, size_t /*alignment*/, size_t size) noexcept {
  // The block's own metadata says how it was placed, so the alignment is not needed to free it.
  shim_free_sized(p, size, "free_aligned_sized");
}

void cfree(void* p) noexcept {
  shim_free(p, "cfree");
}

// glibc's own names for its allocator, which some programs and libraries call to reach "the
// real malloc" from inside their own wrappers: they must land on the same heap as malloc. (Plain
// wrappers, not aliases: an alias would have to repeat every attribute glibc's headers put on
// the target.)
SLABPOOL_SHIM_EXPORT void* __libc_malloc(size_t size) noexcept {
  return malloc(size);
}
SLABPOOL_SHIM_EXPORT void __libc_free(void* p) noexcept {
  free(p);
}
SLABPOOL_SHIM_EXPORT void* __libc_calloc(size_t n, size_t size) noexcept {
  return calloc(n, size);
}
SLABPOOL_SHIM_EXPORT void* __libc_realloc(void* p, size_t size) noexcept {
  return realloc(p, size);
}
SLABPOOL_SHIM_EXPORT void* __libc_memalign(size_t alignment, size_t size) noexcept {
  return memalign(alignment, size);
}
SLABPOOL_SHIM_EXPORT void* __libc_valloc(size_t size) noexcept {
  return valloc(size);
}
SLABPOOL_SHIM_EXPORT void* __libc_pvalloc(size_t size) noexcept {
  return pvalloc(size);
}

}  // extern "C"
