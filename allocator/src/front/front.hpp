// The front door: the one internal header through which the public API (api.cpp) and every
// adapter (pmr, pool, preload) reach the core. Adapters include this and public headers only
// (scripts/check-structure enforces it); everything they need from below is declared here:
//   - the allocation fast paths, inline: malloc, sized and unsized free, a pop for pmr;
//   - the C library's rules, shared by the C API and the shim: aligned, zeroed and resized
//     allocation, usable size, "is this ours";
//   - the slow paths they fall into (slow_path.cpp);
//   - blocks with a mapping of their own (over-aligned and arena blocks);
//   - services: process start-up, fatal and verbose output, options, the page size, a clock and
//     thread-exit notification.
// Sizes pass through everywhere (0 = unknown), so checked mode sees what a sized free claims.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/attributes.hpp"
#include "base/size_class.hpp"
#include "heap/heap.hpp"
#include "platform/platform.hpp"
#include "process/process.hpp"
#include "runtime/mode.hpp"
#include "runtime/options.hpp"
#include "runtime/report.hpp"
#include "segment/own_mapping.hpp"
#include "segment/segment.hpp"

namespace slabpool::detail {

// --- slow paths (slow_path.cpp)
// ------------------------------------------------------------------- Refills class `cls` of heap
// `h` and pops one block for a request of `size` bytes; sets the thread up on its first allocation;
// nullptr with ENOMEM when out of memory. In checked mode every allocation comes here.
SLABPOOL_NOINLINE void* alloc_slow(heap* h, unsigned cls, std::size_t size) noexcept;
// Frees p whose slab is not owned by the calling thread (remote, large, huge, or any block in
// checked mode). `size_hint` is the size a sized free passed, 0 when unknown.
SLABPOOL_NOINLINE void free_slow(slab* s, void* p, std::size_t size_hint) noexcept;
// Frees what free's first test sends aside: nullptr (a no-op), a pointer whose in-segment offset
// is 0 (invalid), or in checked mode every pointer (checked mode asks the segment map before it
// reads anything of p's). The unused first parameter gives it free_slow's register layout, so
// the fast path keeps p and the size where both calls want them.
SLABPOOL_COLD void free_null_or_invalid(slab* unused, void* p, std::size_t size_hint) noexcept;
// Blocks above the largest class (or aligned beyond what a class gives): page-granular, from
// segments or a mapping of their own; zeroed when `zero`. nullptr with ENOMEM.
SLABPOOL_NOINLINE void* large_alloc(std::size_t size, std::size_t alignment, bool zero) noexcept;
// Bytes usable at p (p must be a live block).
std::size_t block_usable_size(const void* p) noexcept;
// realloc of a huge block to a huge size, without a copy; nullptr when p is not huge or the
// kernel had no room (the caller copies).
SLABPOOL_NOINLINE void* resize_big_block(void* p, std::size_t size) noexcept;
// A block with a mapping of its own (segment/own_mapping.hpp: over-aligned and arena blocks),
// under the same out-of-memory rule as every other allocation; nullptr when memory runs out.
own_mapping* own_mapping_new(std::size_t bytes, std::size_t alignment) noexcept;

// --- fast paths
// ----------------------------------------------------------------------------------- (a &
// g_free_screen) == 0 as one `test` with a memory operand: compilers copy and `and` instead, one
// instruction more than the constant test this replaced on the hottest path there is.
SLABPOOL_ALWAYS_INLINE bool screened_out(std::uintptr_t a) noexcept {
#if defined(__x86_64__) && !defined(SLABPOOL_TSAN)
  bool zero;
  asm("testq %1, %2" : "=@ccz"(zero) : "r"(a), "m"(g_free_screen));
  return zero;
#else
  return (a & __atomic_load_n(&g_free_screen, __ATOMIC_RELAXED)) == 0;
#endif
}

// After the current slab's staged list ran dry: the commonest refill, the owner's own frees into
// that slab, swapped in without a call (a slab stages about a page of blocks, so a loop that
// frees what it allocates comes here every few dozen pairs), else the slow path.
SLABPOOL_ALWAYS_INLINE void* pop_after_miss(heap* h, slab* s, unsigned cls,
                                            std::size_t size) noexcept {
  if (free_block* b = slab_pop_local_list(s)) return b;
  return alloc_slow(h, cls, size);
}

SLABPOOL_ALWAYS_INLINE void* pop_block(heap* h, std::size_t cls, std::size_t size) noexcept {
  slab* s = h->current[cls];
  free_block* b = s->free;
  if (b == nullptr) [[unlikely]]
    return pop_after_miss(h, s, static_cast<unsigned>(cls), size);
  return slab_pop(s, b);
}

// The fast path alone, for adapters that keep their own slow path: a block for a size up to
// kMaxDirectSize from the current slab's staged list or, when that ran dry, from the owner's frees
// into it (both without a call); nullptr when there is neither (then call alloc_direct_slow).
SLABPOOL_ALWAYS_INLINE void* try_pop_direct(std::size_t size) noexcept {
  slab* s = tls_heap->direct[(size + 15) >> 4];
  free_block* b = s->free;
  if (b != nullptr) [[likely]]
    return slab_pop(s, b);
  return slab_pop_local_list(s);
}
// After try_pop_direct missed: the slow path for the same size.
inline void* alloc_direct_slow(std::size_t size) noexcept {
  return alloc_slow(tls_heap, kSmallClassTable[(size + 15) >> 4], size);
}

// heap_malloc for a size known to be above kMaxDirectSize.
SLABPOOL_ALWAYS_INLINE void* heap_malloc_above_direct(std::size_t size) noexcept {
  if (size <= kMaxClassSize) return pop_block(tls_heap, class_above_direct(size), size);
  return large_alloc(size, kMinAlignment, false);
}

SLABPOOL_ALWAYS_INLINE void* heap_malloc(std::size_t size) noexcept {
  heap* h = tls_heap;
  // Most requests are small: one compare, then the slab straight from the size.
  if (size <= kMaxDirectSize) [[likely]] {
    const std::size_t slot = (size + 15) >> 4;
    slab* s = h->direct[slot];
    free_block* b = s->free;
    if (b == nullptr) [[unlikely]]
      return pop_after_miss(h, s, kSmallClassTable[slot], size);
    return slab_pop(s, b);
  }
  if (size <= kMaxClassSize) return pop_block(h, class_above_direct(size), size);
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
  if (s->owner.load(std::memory_order_relaxed) == tls_heap) [[likely]]
    return slab_push_local(s, p);
  free_slow(s, p, size_hint);
}

SLABPOOL_ALWAYS_INLINE void heap_free(void* p) noexcept {
  heap_free_sized(p, 0);
}

// --- the C library's rules
// --------------------------------------------------------------------------
constexpr bool is_power_of_two(std::size_t x) {
  return x != 0 && (x & (x - 1)) == 0;
}

// Smallest class at or above `size` whose blocks all fall on `alignment` (<= kUnitSize): slabs
// start on unit boundaries, so a block size that is a multiple of the alignment suffices. The
// power-of-two class at or above max(size, alignment) always qualifies.
inline unsigned aligned_class(std::size_t size, std::size_t alignment) {
  unsigned cls = size_to_class(size > alignment ? size : alignment);
  while (class_size(cls) % alignment != 0) ++cls;
  return cls;
}

// `size` bytes at `alignment`; nullptr with EINVAL when the alignment is not a power of two or
// exceeds kMaxAlignment, with ENOMEM when memory runs out.
inline void* aligned_malloc(std::size_t alignment, std::size_t size) noexcept {
  if (!is_power_of_two(alignment) || alignment > kMaxAlignment) {
    errno = EINVAL;
    return nullptr;
  }
  if (alignment <= kMinAlignment) return heap_malloc(size);
  if (alignment <= kUnitSize && size <= kMaxClassSize && alignment <= kMaxClassSize) {
    return pop_block(tls_heap, aligned_class(size, alignment), size);
  }
  // Size 0 still needs a unique block: large_alloc would compute a run of zero units.
  return large_alloc(size == 0 ? 1 : size, alignment, false);
}

// n*size zeroed bytes; nullptr with ENOMEM on overflow or when memory runs out.
inline void* zeroed_malloc(std::size_t n, std::size_t size) noexcept {
  std::size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  if (bytes > kMaxClassSize) return large_alloc(bytes, kMinAlignment, true);
  void* p = heap_malloc(bytes);
  if (p != nullptr) std::memset(p, 0, bytes);
  return p;
}

// realloc: p may be nullptr (then malloc); size 0 frees p and returns nullptr (glibc's
// behaviour). On failure returns nullptr with ENOMEM and leaves p untouched.
inline void* resize(void* p, std::size_t size) noexcept {
  if (p == nullptr) return heap_malloc(size);
  if (size == 0) {
    heap_free(p);
    return nullptr;
  }
  const std::size_t usable = block_usable_size(p);
  // Stay in place while the block fits and would not waste more than half of itself. Checked
  // mode always moves: the trailer sits right after the size the block was allocated with.
  if (size <= usable && size >= usable / 2 && !g_checked) return p;
  // A block above the size classes that stays there changes size where it can: a large block
  // grows over the free units after it, a huge one is moved by the kernel, pages and all (no
  // copy, and the old block does not sit next to the new one: glibc's mremap rule). Checked mode
  // moves.
  if (size > kMaxClassSize && usable > kMaxClassSize && !g_checked) {
    if (void* q = resize_big_block(p, size)) return q;
  }
  void* q = heap_malloc(size);
  if (q == nullptr) return nullptr;
  std::memcpy(q, p, size < usable ? size : usable);
  heap_free(p);
  return q;
}

// Whether p lies in slabpool's segments (one bitmap load, no lock; never reads p).
inline bool owns(const void* p) noexcept {
  return segment_map_contains(p);
}

// --- services for the adapters
// -------------------------------------------------------------------- The process start-up
// (options read, checked mode fixed); idempotent and cheap after the first.
inline void start() noexcept {
  process_start();
}
// Whether checked mode is on (starts the process first, so the answer is final).
inline bool checked_mode() noexcept {
  process_start();
  return g_checked;
}
// Whether SLABPOOL_VERBOSE asks for notes on stderr.
inline bool verbose_mode() noexcept {
  process_start();
  return option(SP_OPTION_VERBOSE) != 0;
}
inline std::size_t page_size() noexcept {
  return os::page_size();
}
// Monotonic nanoseconds: full resolution, or the coarse clock's (a few ms, and cheaper).
inline std::uint64_t monotonic_ns() noexcept {
  return os::now_ns();
}
inline std::uint64_t monotonic_coarse_ns() noexcept {
  return os::now_coarse_ns();
}
// A key whose function runs at the exit of each thread that set a value (false when the OS has
// none left).
inline bool thread_exit_key_create(exit_key& key, void (*fn)(void*)) noexcept {
  return os::exit_key_create(key, fn);
}
inline void thread_exit_key_set(exit_key& key, void* value) noexcept {
  os::exit_key_set(key, value);
}

}  // namespace slabpool::detail
