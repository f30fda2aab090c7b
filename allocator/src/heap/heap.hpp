// The heap layer: one heap per thread, its bins of slabs per class, and finding a block when the
// current slab of a class runs dry. (The fast paths that pop from the current slab are the front
// door's: front/front.hpp.)
//
// Each thread reaches its heap through one initial-exec TLS pointer. A thread starts out pointing
// at `g_empty_heap`, whose bins all hold the never-filled `g_empty_slab`: the first pop misses and
// the slow path sets the thread up, so the fast path carries no "initialised?" test.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/attributes.hpp"
#include "base/size_class.hpp"
#include "base/spin_lock.hpp"
#include "segment/segment.hpp"
#include "slabpool/detail/locks.hpp"

namespace slabpool::detail {

// All slabs a heap owns for one class, in a circular list; the slow path rotates through it looking
// for slabs that regained free blocks.
struct heap_bin {
  slab* ring = nullptr;
  // A slab of the ring that stopped being current with never-used blocks left, or nullptr (see
  // heap_find_other_slab; bin_unlink clears it).
  slab* partial = nullptr;
  std::uint32_t slabs = 0;
};

inline constexpr std::size_t kDirectSlots = kMaxDirectSize / 16 + 1;

struct heap {
  // Hot: the slab each class allocates from. Never null; g_empty_slab when there is none yet.
  // `direct` mirrors `current` by (size + 15) / 16 for sizes up to kMaxDirectSize, saving the
  // class-table load on the commonest allocations.
  slab* direct[kDirectSlots];
  slab* current[kClassCount];
  // Cold: everything below is touched by slow paths only, under `lock`. A trimmer thread takes the
  // lock to release slabs of a heap whose thread sits idle.
  ranked<spin_lock> lock{lock_rank::heap};
  heap_bin bins[kClassCount] = {};
  // Empty slabs the last trim pass left in the bins (within the delay and the thread's budget).
  // When the heap needs a new slab while some may still be empty, it gives them back first
  // (heap.cpp, new_slab), so it reuses memory it holds before it touches more.
  std::uint32_t empty_kept = 0;
  heap* next_live = nullptr;  // registry of live heaps
  heap* prev_live = nullptr;
  bool live = false;
  // The heap that threads share after their own was handed over at exit (heap_shared()): no
  // thread owns it, so no slab of it is ever current.
  bool shared = false;

  constexpr heap();
};

extern constinit slab g_empty_slab;
extern constinit heap g_empty_heap;

constexpr heap::heap() {
  for (slab*& s : direct) s = &g_empty_slab;
  for (slab*& s : current) s = &g_empty_slab;
}

// The `direct` slots of each class: [first, end) (empty above kMaxDirectSize).
struct direct_range {
  std::uint8_t first;
  std::uint8_t end;
};
inline constexpr auto kDirectRanges = [] {
  std::array<direct_range, kClassCount> ranges{};
  for (std::size_t i = kDirectSlots; i-- > 0;) ranges[kSmallClassTable[i]].first = std::uint8_t(i);
  for (std::size_t i = 0; i < kDirectSlots; ++i)
    ranges[kSmallClassTable[i]].end = std::uint8_t(i + 1);
  return ranges;
}();

// Makes `s` the slab class `cls` allocates from (owner, or trimmer holding h->lock for the owner).
inline void set_current(heap* h, unsigned cls, slab* s) {
  h->current[cls] = s;
  for (unsigned i = kDirectRanges[cls].first; i < kDirectRanges[cls].end; ++i) h->direct[i] = s;
}

extern constinit thread_local heap* tls_heap SLABPOOL_TLS_MODEL;

// --- finding blocks (heap.cpp) -------------------------------------------------------------------
// Blocks another thread frees into a slab of a class this heap uses heavily (a bin of two slabs or
// more) are taken once they add up to this many bytes; until then the current slab's fresh blocks
// come first. Taken as they trickled in from a thread freeing what this one allocates, every
// refill swapped the remote list's cache line with the freeing thread, and the allocating thread
// ended up on the very slab the other was freeing into (issue 12, cross_thread/64 pinned to two
// CPUs: 15.7 M ops/s before freed blocks came first, 11.9 after, lists of 17 blocks on average;
// with batches of 16 KiB 16.5, of 32 KiB 22). It stays well below a slab of the small classes
// (64 KiB): with batches of a whole slab, frees streaming in no faster than a slab at a time
// seldom made one, and every refill scanned the bin in vain (12).
inline constexpr std::size_t kRemoteBatchBytes = 32 * 1024;

// Whether the blocks freed into `s` (of `bin`) since it was last staged are worth a refill now:
// the owner's own frees always (they cost no shared cache line); other threads' frees once they
// make a batch, or at any count in a bin of one slab. A class one slab holds is where the
// thread-per-connection server keeps its memory (a slab per thread and class): there, carving a
// page to wait for a batch would touch memory the freed blocks could have spared (many threads,
// RSS / live 2.25 instead of 2.0 with 16 KiB batches in every bin, 2.0 with bins of two slabs
// or more only).
inline bool slab_freed_worth_taking(const slab* s, const heap_bin& bin) {
  if (s->local_free != nullptr) return true;
  const std::uint32_t remote = remote_list::count(s->remote.load(std::memory_order_relaxed));
  return remote != 0 && (bin.slabs < 2 || std::size_t{remote} * s->block_size >= kRemoteBatchBytes);
}

// heap_find_slab past its first try (blocks freed into the current slab): the bin, the current
// slab's fresh blocks, short remote lists, adoption, a new slab.
slab* heap_find_other_slab(heap* h, unsigned cls, bool scan_all) noexcept;

// Finds a slab of class `cls` with a staged block: the current one refilled with blocks freed
// into it (inline: the common case), else, in this order, blocks freed into another slab of the
// bin, never-used blocks of the current slab, other threads' frees too few for a batch, never-used
// blocks of another slab, an abandoned slab adopted, a new slab. Freed blocks come before fresh
// ones so the memory a heap has touched is reused before it touches more (issue 12), except for
// a stream of other threads' frees not yet a batch (slab_freed_worth_taking). `scan_all` looks at
// every slab of the bin (the retry after memory ran out) instead of a few. Caller holds h->lock.
// nullptr when out of memory.
inline slab* heap_find_slab(heap* h, unsigned cls, bool scan_all) noexcept {
  slab* current = h->current[cls];
  if (current != &g_empty_slab && slab_freed_worth_taking(current, h->bins[cls]) &&
      slab_refill_freed(current)) {
    return current;
  }
  return heap_find_other_slab(h, cls, scan_all);
}

// One block of class `cls` without making any slab current, so the fast paths keep missing:
// checked mode's source of blocks, and the shared heap's. Caller holds h->lock. nullptr when out
// of memory.
void* heap_pop_unstaged(heap* h, unsigned cls, bool scan_all) noexcept;

}  // namespace slabpool::detail
