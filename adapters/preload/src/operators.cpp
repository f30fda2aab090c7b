// Every replaceable operator new and delete: plain, array, nothrow, aligned, sized, and the
// combinations. Array forms behave exactly like the single-object ones (the core needs no
// cookie). Aligned blocks are ordinary blocks whose metadata records the placement, so every
// delete form, aligned or not, sized or not, frees through the same path.
#include <new>

#include "shim.hpp"

using namespace slabpool::detail;
using namespace slabpool::preload;

namespace {

// 0 means "malloc's alignment".
inline void* try_alloc(std::size_t size, std::size_t alignment) noexcept {
  return alignment == 0 ? heap_malloc(size) : shim_aligned_alloc(alignment, size);
}

// [new.delete.single]: on failure call the installed new-handler and retry, for as long as there
// is one; it may free memory, install another handler, or throw. With none left, throw.
SLABPOOL_NOINLINE void* new_failed(std::size_t size, std::size_t alignment) {
  if (alignment != 0 && !is_power_of_two(alignment)) throw std::bad_alloc();
  for (;;) {
    const std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
    if (void* p = try_alloc(size, alignment)) return p;
  }
}

// The nothrow forms: the same retries, with a null result where the throwing form would throw.
// Without a handler nothing can throw, so the common failure costs no exception.
SLABPOOL_NOINLINE void* new_failed_nothrow(std::size_t size, std::size_t alignment) noexcept {
  if (std::get_new_handler() == nullptr) return nullptr;
  try {
    return new_failed(size, alignment);
  } catch (...) {
    return nullptr;
  }
}

inline void* new_impl(std::size_t size) {
  if (void* p = heap_malloc(size)) [[likely]]
    return p;
  return new_failed(size, 0);
}

inline void* new_aligned_impl(std::size_t size, std::align_val_t alignment) {
  const auto a = static_cast<std::size_t>(alignment);
  if (void* p = shim_aligned_alloc(a, size)) [[likely]]
    return p;
  return new_failed(size, a);
}

inline void* new_nothrow_impl(std::size_t size, std::size_t alignment) noexcept {
  if (void* p = try_alloc(size, alignment)) [[likely]]
    return p;
  return new_failed_nothrow(size, alignment);
}

constexpr const char* kDelete = "operator delete";

}  // namespace

SLABPOOL_SHIM_EXPORT void* operator new(std::size_t size) {
  return new_impl(size);
}
SLABPOOL_SHIM_EXPORT void* operator new[](std::size_t size) {
  return new_impl(size);
}

SLABPOOL_SHIM_EXPORT void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return new_nothrow_impl(size, 0);
}
SLABPOOL_SHIM_EXPORT void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return new_nothrow_impl(size, 0);
}

SLABPOOL_SHIM_EXPORT void* operator new(std::size_t size, std::align_val_t alignment) {
  return new_aligned_impl(size, alignment);
}
SLABPOOL_SHIM_EXPORT void* operator new[](std::size_t size, std::align_val_t alignment) {
  return new_aligned_impl(size, alignment);
}

SLABPOOL_SHIM_EXPORT void* operator new(std::size_t size, std::align_val_t alignment,
                                        const std::nothrow_t&) noexcept {
  return new_nothrow_impl(size, static_cast<std::size_t>(alignment));
}
SLABPOOL_SHIM_EXPORT void* operator new[](std::size_t size, std::align_val_t alignment,
                                          const std::nothrow_t&) noexcept {
  return new_nothrow_impl(size, static_cast<std::size_t>(alignment));
}

SLABPOOL_SHIM_EXPORT void operator delete(void* p) noexcept {
  shim_free(p, kDelete);
}
SLABPOOL_SHIM_EXPORT void operator delete[](void* p) noexcept {
  shim_free(p, kDelete);
}

SLABPOOL_SHIM_EXPORT void operator delete(void* p, const std::nothrow_t&) noexcept {
  shim_free(p, kDelete);
}
SLABPOOL_SHIM_EXPORT void operator delete[](void* p, const std::nothrow_t&) noexcept {
  shim_free(p, kDelete);
}

SLABPOOL_SHIM_EXPORT void operator delete(void* p, std::size_t size) noexcept {
  shim_free_sized(p, size, kDelete);
}
SLABPOOL_SHIM_EXPORT void operator delete[](void* p, std::size_t size) noexcept {
  shim_free_sized(p, size, kDelete);
}

SLABPOOL_SHIM_EXPORT void operator delete(void* p, std::align_val_t) noexcept {
  shim_free(p, kDelete);
}
SLABPOOL_SHIM_EXPORT void operator delete[](void* p, std::align_val_t) noexcept {
  shim_free(p, kDelete);
}

SLABPOOL_SHIM_EXPORT void operator delete(void* p, std::align_val_t,
                                          const std::nothrow_t&) noexcept {
  shim_free(p, kDelete);
}
SLABPOOL_SHIM_EXPORT void operator delete[](void* p, std::align_val_t,
                                            const std::nothrow_t&) noexcept {
  shim_free(p, kDelete);
}

SLABPOOL_SHIM_EXPORT void operator delete(void* p, std::size_t size, std::align_val_t) noexcept {
  shim_free_sized(p, size, kDelete);
}
SLABPOOL_SHIM_EXPORT void operator delete[](void* p, std::size_t size, std::align_val_t) noexcept {
  shim_free_sized(p, size, kDelete);
}
