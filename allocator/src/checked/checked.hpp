// Checked mode (SLABPOOL_CHECKED=1): every allocation and free leaves the fast paths and is
// verified. It costs the release fast paths nothing: in checked mode no slab is ever a heap's
// current slab (so every allocation misses) and every slab's owner is a tag no thread's heap
// equals (so every free misses).
//
// Each block carries a trailer: the bytes between the requested size and the last word are
// filled with a pattern, and the last word holds the requested size, encoded. A free block's
// second word holds a marker. Freed blocks wait in a quarantine before they can be reused, so a
// double free is caught even after other allocations.
#pragma once

#include <cstddef>

#include "slab/slab.hpp"

namespace slabpool::detail {

// Bytes checked mode adds to every request: pattern (at least 8) and the size word.
inline constexpr std::size_t kCheckedTrailer = 16;

// The class at or above `cls` with room for `size` bytes and the trailer and the same natural
// alignment as `cls`; kClassCount when no class has room (the block is then a large one, aligned
// to checked_large_alignment(cls)).
unsigned checked_class(unsigned cls, std::size_t size) noexcept;
std::size_t checked_large_alignment(unsigned cls) noexcept;

// Formats block p of class `cls` for a request of `size` bytes: trailer, size word, no freed mark.
void* checked_init_small(void* p, unsigned cls, std::size_t size) noexcept;
// Large and huge blocks: the trailer goes after the requested bytes; call with the request size.
void checked_large_init(slab* s, void* p, std::size_t size) noexcept;
// Verifies p (ours, a block start, allocated, trailer intact, size hint right) and frees it, or,
// for a large or huge block, claims it and returns its span for the caller to free with no lock
// held (nullptr otherwise). Reports and aborts on any error. `operation` names the API call.
[[nodiscard]] slab* checked_free(void* p, std::size_t size_hint, const char* operation) noexcept;
// The size p was allocated with; reports and aborts when p is not slabpool's.
std::size_t checked_usable_size(const void* p) noexcept;
// Reports and aborts unless p lies in slabpool's memory (asks the segment map: never reads p).
void verify_ours(const void* p, const char* operation) noexcept;

// fork(): the quarantine lock is a fork participant (process/fork.cpp).
void quarantine_lock_for_fork() noexcept;
void quarantine_unlock_after_fork() noexcept;

}  // namespace slabpool::detail
