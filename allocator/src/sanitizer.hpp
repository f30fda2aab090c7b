// AddressSanitizer integration: slabpool poisons the parts of its memory no program may touch
// (free blocks past their link word, uncarved slab space, the tail of large spans), so ASan
// reports a use-after-free or an overflow inside slabpool memory as it would inside malloc's.
// Compiled to nothing unless the build uses ASan.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define SLABPOOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLABPOOL_ASAN 1
#endif
#endif

#ifdef SLABPOOL_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace slabpool::detail {

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

// A free block keeps its first word (the list link) addressable; the rest is poisoned.
inline constexpr std::size_t kLinkBytes = sizeof(void*);

}  // namespace slabpool::detail
