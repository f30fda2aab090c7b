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

#include "heap.hpp"

namespace slabpool::detail {

// Whether checked mode is on; fixed at the first allocation (checked_mode_latch).
extern bool g_checked;
// The owner every slab gets in checked mode.
extern heap g_checked_owner;

// Reads SLABPOOL_CHECKED once, before the first heap or large block exists.
void checked_mode_latch() noexcept;

inline heap* slab_owner_tag(heap* h) {
  return g_checked ? &g_checked_owner : h;
}

// Bytes checked mode adds to every request: pattern (at least 8) and the size word.
inline constexpr std::size_t kCheckedTrailer = 16;

// A verified block for `size` bytes; `cls` is the class the fast path chose (its natural
// alignment is kept). nullptr with ENOMEM.
void* checked_alloc(heap* h, unsigned cls, std::size_t size) noexcept;
// Large and huge blocks: the trailer goes after the requested bytes; call with the request size.
void checked_large_init(slab* s, void* p, std::size_t size) noexcept;
// Verifies p (ours, a block start, allocated, trailer intact, size hint right) and frees it;
// reports and aborts otherwise. `operation` names the API call in the report.
void checked_free(void* p, std::size_t size_hint, const char* operation) noexcept;
// The size p was allocated with; reports and aborts when p is not slabpool's.
std::size_t checked_usable_size(const void* p) noexcept;
// Reports and aborts unless p lies in slabpool's memory (asks the segment map: never reads p).
void verify_ours(const void* p, const char* operation) noexcept;

// fork(): the quarantine lock is a fork participant (fork.cpp).
void quarantine_lock_for_fork() noexcept;
void quarantine_unlock_after_fork() noexcept;

}  // namespace slabpool::detail
