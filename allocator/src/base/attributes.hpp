// Compiler attributes and sanitizer detection, in one place: every other file says what it
// means (noinline, cold, initial-exec TLS, "built with ASan") through these names.
#pragma once

#include <cstddef>

// --- function and variable attributes ----------------------------------------------------------
#define SLABPOOL_NOINLINE __attribute__((noinline))
#define SLABPOOL_COLD __attribute__((noinline, cold))
#define SLABPOOL_ALWAYS_INLINE inline __attribute__((always_inline))
// Thread-locals of the library are reached initial-exec: one fs-relative load, no call.
#define SLABPOOL_TLS_MODEL __attribute__((tls_model("initial-exec")))

// --- sanitizers ----------------------------------------------------------------------------------
#if defined(__SANITIZE_ADDRESS__)
#define SLABPOOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLABPOOL_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define SLABPOOL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLABPOOL_TSAN 1
#endif
#endif

#ifdef SLABPOOL_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace slabpool::detail {

// AddressSanitizer integration: slabpool poisons the parts of its memory no program may touch
// (free blocks past their link word, uncarved slab space, the tail of large spans), so ASan
// reports a use-after-free or an overflow inside slabpool memory as it would inside malloc's.
// Compiled to nothing unless the build uses ASan.
#ifdef SLABPOOL_ASAN
inline constexpr bool kAsan = true;
inline void asan_poison(const void* p, std::size_t n) {
  ASAN_POISON_MEMORY_REGION(p, n);
}
inline void asan_unpoison(const void* p, std::size_t n) {
  ASAN_UNPOISON_MEMORY_REGION(p, n);
}
#else
inline constexpr bool kAsan = false;
inline void asan_poison(const void*, std::size_t) {}
inline void asan_unpoison(const void*, std::size_t) {}
#endif

#ifdef SLABPOOL_TSAN
inline constexpr bool kTsan = true;
#else
inline constexpr bool kTsan = false;
#endif

// A free block keeps its first word (the list link) addressable; the rest is poisoned.
inline constexpr std::size_t kLinkBytes = sizeof(void*);

}  // namespace slabpool::detail
