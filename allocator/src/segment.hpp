// Segments, slabs and the process-wide segment map.
//
// A segment is a kSegmentSize mapping aligned to its size. Unit 0 holds this header; units 1..63
// are handed out as runs ("spans"): a slab of one size class, or one large block. Huge blocks get a
// segment of their own, bigger than kSegmentSize, whose header has the same layout.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "config.hpp"

namespace slabpool::detail {

struct heap;

// A free block's first word links it to the next one, XOR-encoded with a constant whose sign
// extension sets the high 33 bits. A link overwritten by a stray write (zeros, a small number, a
// pointer the program stored after freeing) decodes to a non-canonical address, so the next
// allocation from that list faults on it instead of handing out arbitrary memory. It costs one
// XOR on each side (an immediate operand) and is no defence against an attacker who knows the
// constant; checked mode is the tool for finding such bugs.
inline constexpr std::uintptr_t kLinkKey = static_cast<std::uintptr_t>(std::intptr_t{-0x61c88647});

struct free_block {
  std::uintptr_t link;
};

inline free_block* next_block(const free_block* b) {
  return reinterpret_cast<free_block*>(b->link ^ kLinkKey);
}
inline void set_next_block(free_block* b, const free_block* next) {
  b->link = reinterpret_cast<std::uintptr_t>(next) ^ kLinkKey;
}

enum class slab_kind : std::uint8_t { unused, small, large, huge };

// Blocks freed by threads other than the owner are pushed onto `remote` with one CAS. The word
// packs the list head (low kAddressBits) and the number of blocks on it (high bits), so the owner
// takes the whole list with one exchange, and a trimmer can count the blocks on it with one load.
struct remote_list {
  static constexpr unsigned kCountShift = kAddressBits;
  static constexpr std::uintptr_t kHeadMask = (std::uintptr_t{1} << kCountShift) - 1;
  static free_block* head(std::uintptr_t word) {
    return reinterpret_cast<free_block*>(word & kHeadMask);
  }
  static std::uint32_t count(std::uintptr_t word) {
    return static_cast<std::uint32_t>(word >> kCountShift);
  }
};

// Adds one to a counter only the calling thread writes, readable by others with acquire loads.
// On x86-64 a single non-atomic `add` to memory does it (no lock prefix: there is no other
// writer), ordered after the thread's earlier stores by the architecture (TSO) and by the asm's
// memory clobber for the compiler; elsewhere a relaxed load and a release store.
#if defined(__SANITIZE_THREAD__)
#define SLABPOOL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLABPOOL_TSAN 1
#endif
#endif
inline void owner_increment(std::atomic<std::uint32_t>& counter) {
#if defined(__x86_64__) && !defined(SLABPOOL_TSAN)
  static_assert(sizeof(counter) == sizeof(std::uint32_t));
  asm volatile("addl $1, %0" : "+m"(*reinterpret_cast<std::uint32_t*>(&counter)) : : "memory");
#else
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_release);
#endif
}

// Every block a slab has carved is in exactly one place: `free` (staged for the owner's next
// allocations), `local_free` (freed by the owner), `remote` (freed by another thread), or held by
// the program. Allocation pops `free` and counts nothing; a free by the owner pushes `local_free`
// and counts it. A refill swaps a list into `free` once `free` runs dry, and a slab stops being
// current only with `free` empty, so for every non-current slab
//   live blocks = carved - local_count - remote count
// which a trimmer can evaluate from another thread without touching the lists.
struct slab {
  // --- read or written by the fast paths ---
  free_block* free = nullptr;          // owner pops
  free_block* local_free = nullptr;    // owner pushes
  std::atomic<heap*> owner = nullptr;  // owning heap; nullptr for large blocks and abandoned slabs
  // Blocks on local_free. Only the owner writes it (a plain load and store, never an RMW).
  std::atomic<std::uint32_t> local_count = 0;
  std::uint32_t block_size = 0;
  // --- slow paths only ---
  std::atomic<std::uintptr_t> remote = 0;
  char* area = nullptr;        // first byte of the span
  std::uint32_t capacity = 0;  // blocks that fit in the span
  std::uint32_t carved = 0;    // blocks carved so far; the rest is untouched memory
  std::uint16_t units = 0;     // span length
  std::uint8_t class_index = 0;
  slab_kind kind = slab_kind::unused;
  std::uint8_t in_bin = 0;  // linked in a heap bin or the abandoned list
  slab* next = nullptr;     // links in a heap bin, the abandoned list
  slab* prev = nullptr;
  std::size_t requested = 0;         // checked mode: the size a large or huge block was asked for
  std::uint64_t empty_since_ms = 0;  // when a trim pass first saw it empty
  bool seen_empty = false;           // empty_since_ms is valid
};

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

// Blocks of `s` the program holds, given how many sit on its `free` list (0 for any slab that is
// not some heap's current slab). Exact when the owner cannot run concurrently, or for non-current
// slabs.
inline std::uint32_t slab_live_blocks(const slab* s, std::uint32_t staged) {
  const std::uint32_t returned = s->local_count.load(std::memory_order_acquire) +
                                 remote_list::count(s->remote.load(std::memory_order_acquire));
  const std::uint32_t not_live = staged + returned;
  return s->carved > not_live ? s->carved - not_live : 0;
}

inline std::uint32_t list_length(const free_block* b) {
  std::uint32_t n = 0;
  for (; b != nullptr; b = next_block(b)) ++n;
  return n;
}

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

// A mapping of its own for one block of `size` bytes at `alignment` (a cached one when it fits);
// returns the head slab (kind huge) or nullptr. `*zeroed` as for acquire_span.
slab* acquire_huge(std::size_t size, std::size_t alignment, bool* zeroed) noexcept;
// Keeps the mapping in a small cache (bounded in count and bytes) or unmaps it.
void release_huge(slab* span) noexcept;

// One decay pass over the pool: decommits free units idle for `delay_ms` (all of them when
// `force`), unmaps empty segments and cached huge mappings likewise, and, above the SLABPOOL_CACHE
// budget, the excess regardless of age. Returns the bytes given back; sets *pending when free
// resident memory remains for a later pass.
std::size_t segment_pool_decay(std::uint64_t now_ms, std::uint64_t delay_ms, bool force,
                               bool* pending) noexcept;

struct segment_pool_counters {
  std::size_t mapped;         // bytes mapped for segments and huge blocks
  std::size_t resident;       // upper estimate: headers, units touched since their last decommit
  std::size_t free_resident;  // of which free (empty spans, cached huge blocks)
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
