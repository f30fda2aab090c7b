// What the LD_PRELOAD shim's entry points share: the paths for pointers outside slabpool's
// segments, alignments above what the core serves, and the checks of size hints.
//
// Every pointer reaching free/realloc/malloc_usable_size is first looked up in the segment map
// (one bitmap load). Only pointers inside our segments go to the core, which reads the segment
// header at `p & ~(segment size - 1)`: doing that for a foreign pointer could read unmapped memory
// or, worse, push the block onto a list that is not ours.
#pragma once

#include <cerrno>
#include <cstddef>

#include "front/front.hpp"

#define SLABPOOL_SHIM_EXPORT __attribute__((visibility("default")))

namespace slabpool::preload {

// --- blocks aligned beyond the core's limit ---------------------------------------------------
// glibc serves memalign(8 MiB, n); the core's segments stop at kMaxAlignment because a block on a
// segment boundary would be mistaken for an invalid pointer. Such blocks get a mapping of their
// own from the core's registry of those (segment/own_mapping.hpp), outside the segment map, which
// free() searches only for pointers outside the segments: normal frees never pay for it.

// `size` bytes at `alignment` (a power of two above kMaxAlignment); nullptr with ENOMEM.
inline void* overaligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  detail::own_mapping* m = detail::own_mapping_new(size, alignment);
  if (m == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  detail::own_mapping_register(m);
  return m->block();
}
// Usable bytes of an overaligned block at p, or 0 when p is not one.
inline std::size_t overaligned_usable_size(const void* p) noexcept {
  return detail::own_mapping_registered_size(p);
}
// Unmaps the overaligned block at p; false (and nothing done) when p is not one.
inline bool overaligned_free(void* p) noexcept {
  detail::own_mapping* m = detail::own_mapping_unregister(p);
  if (m == nullptr) return false;
  detail::own_mapping_destroy(m);
  return true;
}

// --- pointers outside the segment map (foreign.cpp) ------------------------------------------
// Frees a non-null p that is not in the segment map: an overaligned block is unmapped. Anything
// else was not handed out by slabpool (ld.so's start-up allocations, a stray pointer): it is left
// alone, never passed to glibc's free (which would abort or corrupt on memory glibc's heap does not
// own), and reported once on stderr when SLABPOOL_VERBOSE is set.
void free_outside_segments(void* p, const char* operation) noexcept;
// realloc for a non-null p outside the segment map: an overaligned block moves into a normal one;
// anything else is fatal (its size is unknown, so no byte could be copied correctly).
void* realloc_outside_segments(void* p, std::size_t size) noexcept;
// Pointers freed through free_outside_segments and left alone so far.
std::size_t foreign_frees_ignored() noexcept;

// --- shared entry-point bodies ---------------------------------------------------------------
inline void shim_free(void* p, const char* operation) noexcept {
  if (detail::owns(p)) [[likely]]
    return detail::heap_free(p);
  if (p != nullptr) free_outside_segments(p, operation);
}

inline std::size_t shim_usable_size(const void* p) noexcept {
  if (detail::owns(p)) [[likely]]
    return detail::block_usable_size(p);
  return p == nullptr ? 0 : overaligned_usable_size(p);
}

// Any power-of-two alignment; nullptr with EINVAL (not a power of two) or ENOMEM.
inline void* shim_aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  if (alignment <= detail::kMaxAlignment) return detail::aligned_malloc(alignment, size);
  if (!detail::is_power_of_two(alignment)) {
    errno = EINVAL;
    return nullptr;
  }
  return overaligned_alloc(alignment, size);
}

// Sized frees (free_sized, free_aligned_sized, sized delete) pass their size on to the core in
// every build: the release fast path never reads it, and checked mode (SLABPOOL_CHECKED=1)
// compares it with the size the block was allocated with and reports a mismatch naming the
// pointer. Builds without NDEBUG also check, in any mode, that the size fits the block.
#ifdef NDEBUG
inline constexpr bool kCheckSizeHints = false;
#else
inline constexpr bool kCheckSizeHints = true;
#endif
void check_size_hint(const char* operation, const void* p, std::size_t size) noexcept;

inline void shim_free_sized(void* p, std::size_t size, const char* operation) noexcept {
  if constexpr (kCheckSizeHints) check_size_hint(operation, p, size);
  if (detail::owns(p)) [[likely]]
    return detail::heap_free_sized(p, size);
  if (p != nullptr) free_outside_segments(p, operation);
}

}  // namespace slabpool::preload
