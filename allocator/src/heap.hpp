// The per-thread heap and the allocation fast paths.
//
// Each thread reaches its heap through one initial-exec TLS pointer. A thread starts out pointing
// at `g_empty_heap`, whose bins all hold the never-filled `g_empty_slab`: the first pop misses and
// the slow path sets the thread up, so the fast path carries no "initialised?" test.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "sanitizer.hpp"
#include "segment.hpp"
#include "size_class.hpp"
#include "slabpool/detail/locks.hpp"
#include "spin_lock.hpp"

namespace slabpool::detail {

// All slabs a heap owns for one class, in a circular list; the slow path rotates through it looking
// for slabs that regained free blocks.
struct heap_bin {
  slab* ring = nullptr;
  std::uint32_t slabs = 0;
};

inline constexpr std::size_t kDirectSlots = kTableLookupMax / 16 + 1;

struct heap {
  // Hot: the slab each class allocates from. Never null; g_empty_slab when there is none yet.
  // `direct` mirrors `current` by (size + 15) / 16 for sizes up to kTableLookupMax, saving the
  // class-table load on the commonest allocations.
  slab* direct[kDirectSlots];
  slab* current[kClassCount];
  // Cold: everything below is touched by slow paths only, under `lock`. A trimmer thread takes the
  // lock to release slabs of a heap whose thread sits idle.
  ranked<spin_lock> lock{lock_rank::heap};
  heap_bin bins[kClassCount] = {};
  heap* next_live = nullptr;  // registry of live heaps
  heap* prev_live = nullptr;
  bool live = false;
  // The heap that threads share after their own was handed over at exit (see
  // exited_thread_alloc): no thread owns it, so no slab of it is ever current.
  bool shared = false;

  constexpr heap();
};

extern constinit slab g_empty_slab;
extern constinit heap g_empty_heap;

constexpr heap::heap() {
  for (slab*& s : direct) s = &g_empty_slab;
  for (slab*& s : current) s = &g_empty_slab;
}

// The `direct` slots of each class: [first, end) (empty above kTableLookupMax).
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

#if defined(__GNUC__)
#define SLABPOOL_TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define SLABPOOL_TLS_MODEL
#endif
extern constinit thread_local heap* tls_heap SLABPOOL_TLS_MODEL;

#define SLABPOOL_NOINLINE __attribute__((noinline))
#define SLABPOOL_COLD __attribute__((noinline, cold))
#define SLABPOOL_ALWAYS_INLINE inline __attribute__((always_inline))

// --- slow paths (heap.cpp, large.cpp) ----------------------------------------------------------
// Refills class `cls` of the calling thread's heap and pops one block for a request of `size`
// bytes; nullptr when out of memory. In checked mode every allocation comes here.
SLABPOOL_NOINLINE void* alloc_slow(heap* h, unsigned cls, std::size_t size) noexcept;
// Frees p whose slab is not owned by the calling thread (remote, large, huge, foreign, or any
// block in checked mode). `size_hint` is the size a sized free passed, 0 when unknown.
SLABPOOL_NOINLINE void free_slow(slab* s, void* p, std::size_t size_hint) noexcept;
// Pushes block p onto the remote list of its small slab s (any thread; lock-free).
void remote_push(slab* s, void* p) noexcept;
// One block of class `cls` from the heap's slabs without making any slab current, so the fast
// paths keep missing: checked mode's source of blocks, and the shared heap's. nullptr when out of
// memory.
void* pop_for_checked(heap* h, unsigned cls) noexcept;
// Frees what free's first test sends aside: nullptr (a no-op), a pointer whose in-segment offset
// is 0 (invalid), or in checked mode every pointer (checked_free asks the segment map before it
// reads anything of p's). The unused first parameter gives it free_slow's register layout, so
// the fast path keeps p and the size where both calls want them.
SLABPOOL_COLD void free_null_or_invalid(slab* unused, void* p, std::size_t size_hint) noexcept;
// The bits of an address free() tests before touching memory: kSegmentMask (no block starts on a
// segment boundary), or 0 in checked mode so that every free reaches free_null_or_invalid. Written
// once, when checked mode is latched before the first block exists.
extern std::uintptr_t g_free_screen __attribute__((visibility("hidden")));

// (a & g_free_screen) == 0 as one `test` with a memory operand: compilers copy and `and` instead,
// one instruction more than the constant test this replaced on the hottest path there is.
SLABPOOL_ALWAYS_INLINE bool screened_out(std::uintptr_t a) noexcept {
#if defined(__x86_64__) && !defined(SLABPOOL_TSAN)
  bool zero;
  asm("testq %1, %2" : "=@ccz"(zero) : "r"(a), "m"(g_free_screen));
  return zero;
#else
  return (a & __atomic_load_n(&g_free_screen, __ATOMIC_RELAXED)) == 0;
#endif
}
// Blocks above the largest class: page-granular, from segments or a mapping of their own.
SLABPOOL_NOINLINE void* large_alloc(std::size_t size, std::size_t alignment, bool zero) noexcept;
void large_free(slab* s) noexcept;
// large_alloc without checked mode's trailer.
void* large_alloc_unchecked(std::size_t size, std::size_t alignment, bool zero) noexcept;

// --- fast paths ----------------------------------------------------------------------------------
SLABPOOL_ALWAYS_INLINE void* pop_block(heap* h, std::size_t cls, std::size_t size) noexcept {
  slab* s = h->current[cls];
  free_block* b = s->free;
  if (b == nullptr) [[unlikely]]
    return alloc_slow(h, static_cast<unsigned>(cls), size);
  if constexpr (kAsan) asan_unpoison(b, s->block_size);
  s->free = next_block(b);
  return b;
}

// The fast path alone, for adapters that keep their own slow path: a block for a size up to
// kTableLookupMax, or nullptr when the current slab has none staged (then call heap_malloc).
SLABPOOL_ALWAYS_INLINE void* try_pop_small(std::size_t size) noexcept {
  slab* s = tls_heap->direct[(size + 15) >> 4];
  free_block* b = s->free;
  if (b != nullptr) [[likely]] {
    if constexpr (kAsan) asan_unpoison(b, s->block_size);
    s->free = next_block(b);
  }
  return b;
}

SLABPOOL_ALWAYS_INLINE void* heap_malloc(std::size_t size) noexcept {
  heap* h = tls_heap;
  // Most requests are small: one compare, then the slab straight from the size.
  if (size <= kTableLookupMax) [[likely]] {
    const std::size_t slot = (size + 15) >> 4;
    slab* s = h->direct[slot];
    free_block* b = s->free;
    if (b == nullptr) [[unlikely]]
      return alloc_slow(h, kSmallClassTable[slot], size);
    if constexpr (kAsan) asan_unpoison(b, s->block_size);
    s->free = next_block(b);
    return b;
  }
  if (size <= kMaxClassSize) return pop_block(h, class_of_geometric(size), size);
  return large_alloc(size, kMinAlignment, false);
}

// Frees p; `size_hint` is what a sized free was told (0: unknown). Only checked mode reads it.
SLABPOOL_ALWAYS_INLINE void heap_free_sized(void* p, std::size_t size_hint) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  // No block starts on a segment boundary, so one test sends both nullptr and garbage aside (and,
  // in checked mode, everything: see g_free_screen).
  if (screened_out(a)) [[unlikely]]
    return free_null_or_invalid(nullptr, p, size_hint);
  slab* s = slab_of(p);
  if (s->owner.load(std::memory_order_relaxed) == tls_heap) [[likely]] {
    auto* b = static_cast<free_block*>(p);
    set_next_block(b, s->local_free);
    s->local_free = b;
    // After the push: a trimmer that counts this block as returned must see the list holding it.
    owner_increment(s->local_count);
    if constexpr (kAsan) asan_poison(b + 1, s->block_size - kLinkBytes);
    return;
  }
  free_slow(s, p, size_hint);
}

SLABPOOL_ALWAYS_INLINE void heap_free(void* p) noexcept {
  heap_free_sized(p, 0);
}

// Bytes usable at p (p must be a live block).
std::size_t block_usable_size(const void* p) noexcept;

}  // namespace slabpool::detail
