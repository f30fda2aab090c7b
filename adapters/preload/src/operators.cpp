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

// The C++ runtime the program uses, looked up when an allocation fails rather than linked: a C
// program the shim goes into then loads no libstdc++ for its sake (issue 12: 1.3 MiB of resident
// memory each). A program that can call operator new has a runtime loaded, from the start or
// opened since (a C++ extension module of an interpreter, say).
struct cxx_runtime {
  const char* library;
  const char* throw_bad_alloc;  // a function of the runtime that throws std::bad_alloc
};
constexpr cxx_runtime kRuntimes[] = {
    {"libstdc++.so.6", "_ZSt17__throw_bad_allocv"},
    {"libc++.so.1", "_ZNSt3__117__throw_bad_allocEv"},  // clang's; not tested here (not installed)
};

// The runtime's std::get_new_handler(); nullptr when none is loaded (then none can be set).
std::new_handler current_new_handler() noexcept {
  for (const cxx_runtime& runtime : kRuntimes) {
    using getter = std::new_handler (*)() noexcept;
    if (auto get = reinterpret_cast<getter>(
            os::loaded_symbol(runtime.library, "_ZSt15get_new_handlerv"))) {
      return get();
    }
  }
  return nullptr;
}

[[noreturn]] SLABPOOL_NOINLINE void throw_bad_alloc() {
  for (const cxx_runtime& runtime : kRuntimes) {
    using thrower = void (*)();
    if (auto raise = reinterpret_cast<thrower>(
            os::loaded_symbol(runtime.library, runtime.throw_bad_alloc))) {
      raise();
    }
  }
  fatal(
      {"operator new: out of memory, and no C++ runtime (libstdc++, libc++) is loaded to "
       "throw std::bad_alloc"});
}

// [new.delete.single]: on failure call the installed new-handler and retry, for as long as there
// is one; it may free memory, install another handler, or throw. With none left, throw.
SLABPOOL_NOINLINE void* new_failed(std::size_t size, std::size_t alignment) {
  if (alignment != 0 && !is_power_of_two(alignment)) throw_bad_alloc();
  for (;;) {
    const std::new_handler handler = current_new_handler();
    if (handler == nullptr) throw_bad_alloc();
    handler();
    if (void* p = try_alloc(size, alignment)) return p;
  }
}

// The nothrow forms: the same retries, with a null result where the throwing form would throw.
// Without a handler nothing can throw, so the common failure costs no exception. With one, the
// runtime's own nothrow operator new does the catching: it calls the throwing form (ours) and
// returns null from its handler. The shim has no exception tables of its own.
SLABPOOL_NOINLINE void* new_failed_nothrow(std::size_t size, std::size_t alignment) noexcept {
  if (alignment != 0 && !is_power_of_two(alignment)) return nullptr;
  if (current_new_handler() == nullptr) return nullptr;
  for (const cxx_runtime& runtime : kRuntimes) {
    // Looked up in the runtime itself, so it is the runtime's definition and not ours.
    if (alignment == 0) {
      using nothrow_new = void* (*)(std::size_t, const std::nothrow_t&) noexcept;
      if (auto run = reinterpret_cast<nothrow_new>(
              os::loaded_symbol(runtime.library, "_ZnwmRKSt9nothrow_t"))) {
        return run(size, std::nothrow_t{});
      }
    } else {
      using nothrow_new = void* (*)(std::size_t, std::align_val_t, const std::nothrow_t&) noexcept;
      if (auto run = reinterpret_cast<nothrow_new>(
              os::loaded_symbol(runtime.library, "_ZnwmSt11align_val_tRKSt9nothrow_t"))) {
        return run(size, std::align_val_t{alignment}, std::nothrow_t{});
      }
    }
  }
  return nullptr;
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
