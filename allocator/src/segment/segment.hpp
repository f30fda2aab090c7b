// The segment layer: segments, the process-wide segment map, and the pool of spans.
//
// A segment is a kSegmentSize mapping aligned to its size. Unit 0 holds this header (an array of
// slab records, one per unit); units 1..63 are handed out as runs ("spans"): a slab of one size
// class, or one large block. Huge blocks get a segment of their own, bigger than kSegmentSize,
// whose header has the same layout. The layer takes times and budgets as arguments: it reads no
// option and no clock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/geometry.hpp"
#include "slab/slab.hpp"

namespace slabpool::detail {

struct segment {
  // unit -> span head, so free(p) finds its slab with one load. Entries of free units are stale.
  slab* unit_slab[kUnitsPerSegment] = {};
  std::uint64_t used_units = 1;   // bit i: unit i is in a span (unit 0 is this header)
  std::uint64_t dirty_units = 0;  // bit i: unit i may hold resident pages
  std::uint64_t unit_freed_ms[kUnitsPerSegment] = {};  // when each free dirty unit was released
  std::size_t mapped_size = kSegmentSize;
  bool huge = false;
  segment* next = nullptr;  // pool list of segments with free units
  segment* prev = nullptr;
  bool in_pool_list = false;
  // Segments serve either single-unit spans (small slabs) or multi-unit ones (bigger slabs, large
  // blocks), never both: scattered single units would otherwise leave no contiguous run for the
  // multi-unit spans. An empty segment may change sides.
  std::uint8_t span_side = 0;  // 0: single-unit spans, 1: multi-unit spans
  slab slabs[kUnitsPerSegment];
};

// Bytes at the start of every segment reserved for the header.
inline constexpr std::size_t kSegmentHeaderBytes = (sizeof(segment) + 4095) & ~std::size_t{4095};
static_assert(kSegmentHeaderBytes <= kUnitSize, "the header must fit in unit 0");

inline segment* segment_of(const void* p) {
  return reinterpret_cast<segment*>(reinterpret_cast<std::uintptr_t>(p) & ~kSegmentMask);
}
inline slab* slab_of(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  return segment_of(p)->unit_slab[(a & kSegmentMask) >> kUnitShift];
}

// --- the segment map: "is this address inside one of our segments?" -------------------------
// One bit per possible segment-sized chunk of the address space (4 MiB of zero pages, touched only
// where we map). Huge segments set the bit of every chunk they cover.
inline constexpr std::size_t kSegmentMapChunks = std::size_t{1} << (kAddressBits - kSegmentShift);
extern std::atomic<std::uint64_t> g_segment_map[kSegmentMapChunks / 64];

// Inline: the preload shim asks this on every free.
inline bool segment_map_contains(const void* p) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  if ((a >> kAddressBits) != 0) return false;
  const std::uintptr_t chunk = a >> kSegmentShift;
  return (g_segment_map[chunk / 64].load(std::memory_order_acquire) >> (chunk % 64)) & 1;
}

// --- the segment pool: spans of units for slabs and large blocks ------------------------------
struct span_request {
  unsigned units;        // run length, 1..kMaxLargeUnits
  unsigned align_units;  // the run's first unit index is a multiple of this (power of two)
};
// Takes a run of free units from a segment (mapping a new one when none fits and `may_map`) and
// returns its head slab with `area` and `units` set, or nullptr. `*zeroed` tells whether every byte
// of the span is known to be zero.
slab* acquire_span(span_request request, bool* zeroed, bool may_map = true) noexcept;
// Returns a span to its segment. Its memory stays resident until a decay pass finds it idle for
// longer than the delay, counting from `idle_since_ms`.
void release_span(slab* span, std::uint64_t idle_since_ms) noexcept;

// Grows the span in place to `units` units when the units right after it in its segment are free,
// taking them under the pool lock. Returns whether it did (false: the span is unchanged).
bool grow_span(slab* span, unsigned units) noexcept;

// A mapping of its own for one block of `size` bytes at `alignment`; returns the head slab (kind
// huge) or nullptr. Cached runs come first: the smallest that holds the block (its surplus stays
// cached), else the biggest, grown by moving it (only the growth is new memory). `*dirty` is how
// many bytes from the block's start may be non-zero (the rest is fresh from the OS).
slab* acquire_huge(std::size_t size, std::size_t alignment, std::size_t* dirty) noexcept;
// Resizes the huge block whose span is `span` to hold `size` bytes at its start, without copying:
// a smaller block gives back its tail chunks, a bigger one is moved by the kernel (its pages and
// all) to a new aligned range of the new size. Returns the span (moved with its mapping, so a new
// pointer when it grew) or nullptr, the block untouched, when no range could be had.
slab* resize_huge(slab* span, std::size_t size) noexcept;
// Keeps the mapping resident in a cache of runs (bounded in count: the oldest run makes room),
// stamped `now_ms` for the decay.
void release_huge(slab* span, std::uint64_t now_ms) noexcept;

// One decay pass over the pool: decommits free units idle for `delay_ms` (all of them when
// `force`), unmaps empty segments and cached huge runs likewise, and, above `cache_budget` bytes
// of free resident units (or half the live large bytes, when more), the excess units regardless
// of age. Returns the bytes given back; sets
// *pending when free resident memory remains for a later pass.
std::size_t segment_pool_decay(std::uint64_t now_ms, std::uint64_t delay_ms, bool force,
                               std::size_t cache_budget, bool* pending) noexcept;

struct segment_pool_counters {
  std::size_t mapped;         // bytes mapped for segments and huge blocks
  std::size_t resident;       // upper estimate: headers, units touched since their last decommit
  std::size_t free_resident;  // of which free (empty spans, cached huge blocks)
  std::size_t huge_cached;    // of which cached huge runs
  std::size_t large_live;     // bytes in live large and huge blocks
  std::size_t returned;       // bytes given back to the OS so far (decommitted or unmapped)
  std::size_t segments;
};
segment_pool_counters segment_pool_read() noexcept;
// Large-block bytes handed out (live = true) or given back, for the stats.
void segment_pool_note_large(std::size_t bytes, bool live) noexcept;

// fork(): hold the pool lock across the fork so the child never sees it half-updated.
void segment_pool_lock_for_fork() noexcept;
void segment_pool_unlock_after_fork() noexcept;

// Bytes currently mapped from the OS for segments (all kinds).
std::size_t segment_bytes_mapped() noexcept;

}  // namespace slabpool::detail
