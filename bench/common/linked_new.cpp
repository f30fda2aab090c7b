// Global operator new/delete for the *-linked bench variants: routes every C++ allocation of the
// program to slabpool's C API, so a workload that mixes malloc and new measures one allocator.
// Only linked into binaries built with SLABPOOL_BENCH_LINKED (see bench/CMakeLists.txt).
#include <cstddef>
#include <new>

#include "slabpool/slabpool.h"

namespace {

void* checked(void* p) {
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

std::size_t align_of(std::align_val_t a) {
  return static_cast<std::size_t>(a);
}

}  // namespace

void* operator new(std::size_t n) {
  return checked(sp_malloc(n));
}
void* operator new[](std::size_t n) {
  return checked(sp_malloc(n));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return sp_malloc(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return sp_malloc(n);
}
void* operator new(std::size_t n, std::align_val_t a) {
  return checked(sp_aligned_alloc(align_of(a), n));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return checked(sp_aligned_alloc(align_of(a), n));
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return sp_aligned_alloc(align_of(a), n);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return sp_aligned_alloc(align_of(a), n);
}

void operator delete(void* p) noexcept {
  sp_free(p);
}
void operator delete[](void* p) noexcept {
  sp_free(p);
}
void operator delete(void* p, std::size_t n) noexcept {
  sp_free_sized(p, n);
}
void operator delete[](void* p, std::size_t n) noexcept {
  sp_free_sized(p, n);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  sp_free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  sp_free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  sp_free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  sp_free(p);
}
// Aligned blocks go through plain sp_free: a size hint is only defined for sp_malloc blocks.
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  sp_free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  sp_free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  sp_free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  sp_free(p);
}
