// Blocks with a mapping of their own, outside the segments: the one registry for them.
//
// Two kinds of block need one: alignments above what segments serve (the shim's memalign(8 MiB),
// beyond kMaxAlignment) and an arena's oversized blocks. (Huge blocks of the allocator proper are
// segments of their own, found through the segment map like any other block.) Each mapping is
//
//   [ ... gap given back ... ][record page][block: `alignment`-aligned, page-rounded]
//   ^ mapped at `alignment`                ^ base + max(alignment, page)
//
// The record sits at the end of the page right below the block, so a holder of the block pointer
// finds it in O(1); a tag (the block's address, scrambled) tells a record from other data. The
// records are linked on a list their holder keeps: a locked, process-wide one for the shim (whose
// free() has no context), or an arena's own (single-threaded).
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/spin_lock.hpp"
#include "slabpool/detail/locks.hpp"

namespace slabpool::detail {

struct own_mapping {
  own_mapping* prev;
  own_mapping* next;
  char* map_base;                // the record page (everything below it went back at creation)
  std::size_t map_bytes;         // record page + block
  std::size_t bytes;             // as requested
  std::size_t alignment;         // as requested
  std::uintptr_t tag;            // block address ^ kOwnMappingTag
  char* block() const noexcept;  // the block: right above the record page
  std::size_t block_bytes() const noexcept;  // its usable size (page-rounded)
};

// Maps a block of `bytes` at `alignment` (any power of two up to 2^40) with its record; nullptr
// when the OS refuses or the request cannot be represented. (Callers above the core use the front
// door's own_mapping_new, which retries after giving idle memory back.)
own_mapping* own_mapping_create(std::size_t bytes, std::size_t alignment) noexcept;
// Unmaps the block and its record (unlink it first).
void own_mapping_destroy(own_mapping* m) noexcept;
// The record of block p, when p starts a page whose previous page is readable memory of the
// caller's (else the read below p may fault) and holds a record for p; nullptr otherwise.
own_mapping* own_mapping_at(void* p) noexcept;

// A list of records, by its head: unsynchronised, for a holder that keeps its own (an arena).
void own_mapping_push(own_mapping*& head, own_mapping* m) noexcept;
void own_mapping_remove(own_mapping*& head, own_mapping* m) noexcept;
// Whether m (a record-shaped object) is on the list: only real records are linked from the head
// and from each other.
bool own_mapping_listed(own_mapping* const& head, const own_mapping* m) noexcept;

// The process-wide registry, for blocks freed without context (the preload shim). Its lock is a
// leaf of rank own_mappings, taken by fork like every other. Links a created block in.
void own_mapping_register(own_mapping* m) noexcept;
// Unlinks and returns the registered block at p, or nullptr when p is not one.
own_mapping* own_mapping_unregister(const void* p) noexcept;
// Usable bytes of the registered block at p, or 0 when p is not one.
std::size_t own_mapping_registered_size(const void* p) noexcept;

// fork(): the registry's lock.
void own_mapping_lock_for_fork() noexcept;
void own_mapping_unlock_after_fork() noexcept;

}  // namespace slabpool::detail
