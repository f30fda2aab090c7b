// slabpool — std::pmr adapters.
//
// slabpool::resource      the process-wide allocator as a std::pmr::memory_resource: thread-safe,
//                         any thread may deallocate what another allocated.
// slabpool::arena_resource memory owned by one object and used by one thread at a time: bump
//                         allocation plus per-size free lists (so deallocate makes blocks
//                         reusable), and release()/destruction returning every byte to the OS at
//                         once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory_resource>

#include "slabpool/export.h"

namespace slabpool {

namespace detail {
// Number of arena size classes (checked against the class table in arena.cpp).
inline constexpr unsigned kArenaClassCount = 93;
struct arena_block;  // a free block on an arena free list
struct arena_chunk;  // header of a chunk the arena bump-allocates from
struct own_mapping;  // record of an oversized block with a mapping of its own
}  // namespace detail

// The process-wide slabpool allocator as a memory resource. Every instance is interchangeable
// (do_is_equal is true for any two), so memory from one may be returned through another.
class SLABPOOL_API resource final : public std::pmr::memory_resource {
 public:
  constexpr resource() noexcept = default;

 private:
  // Returns `bytes` aligned to `alignment`; throws std::bad_alloc when memory runs out or the
  // alignment exceeds SP_MAX_ALIGNMENT (or is not a power of two).
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  // Frees p, from any thread. Never fails.
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  // True when `other` is a slabpool::resource.
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override;

  [[gnu::noinline]] void* allocate_slow(std::size_t bytes, std::size_t alignment);
};

// The process-wide resource. Never destroyed: usable before main, during static destruction and
// from any thread. Never fails.
SLABPOOL_API resource* get_resource() noexcept;

// An arena: a memory resource that owns the memory it hands out and gives all of it back at
// release() or destruction, however many blocks are live. Its chunks go back to slabpool, which
// keeps them for the next arena (on any thread: an arena per request costs no page fault and no
// system call) and returns them to the OS by the trim's decay, within SLABPOOL_TRIM_DELAY_MS
// (500 ms by default) unless reused; oversized blocks are unmapped at once.
//
// Single-thread: the fast paths take no lock and no atomic, so one thread at a time may use it.
// The first thread that allocates (or deallocates) becomes its owner; a call from any other
// thread aborts the process with a message (a one-compare check kept in every build, because a
// race here corrupts memory silently). release() clears the owner, so the arena may then move to
// another thread. release() and the destructor themselves may run on any thread once the owner's
// uses have ended.
//
// Blocks up to 128 KiB (alignment <= 4 KiB) are bump-allocated from chunks that grow
// geometrically (from 64 KiB); deallocate puts a block on a free list of its size class, and the
// next allocation of that class reuses it. Larger blocks or alignments get a mapping of their own,
// unmapped at deallocate. Every power-of-two alignment is honoured, as far as the OS can map it.
class SLABPOOL_API arena_resource final : public std::pmr::memory_resource {
 public:
  // An empty arena; maps nothing until the first allocation. Never fails.
  arena_resource() noexcept : arena_resource(0) {}
  // The same, with a first chunk of `initial_chunk_bytes` (rounded up to whole pages, at least
  // 64 KiB) instead of 64 KiB; each next chunk doubles, up to 64 MiB or the first one's size.
  // Never fails.
  explicit arena_resource(std::size_t initial_chunk_bytes) noexcept;
  arena_resource(const arena_resource&) = delete;
  arena_resource& operator=(const arena_resource&) = delete;
  // Gives everything back, as release() does.
  ~arena_resource() override;

  // Gives every chunk back to slabpool and unmaps every oversized block; all pointers from this
  // arena become invalid.
  // The arena stays usable (it starts over from an empty state) and loses its owner thread.
  // Never fails.
  void release() noexcept;

  // Bytes the arena currently holds (chunks and oversized blocks). Never fails.
  std::size_t mapped_bytes() const noexcept { return mapped_; }

 private:
  // Returns `bytes` aligned to `alignment` (a power of two); throws std::bad_alloc when the OS
  // refuses memory or the request cannot be represented. Aborts on use from a non-owner thread.
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  // Makes p reusable (small blocks) or unmaps it (oversized ones); `bytes` and `alignment` must be
  // the values given to allocate. Aborts with a message on use from a non-owner thread, when an
  // oversized block comes back with a larger size or alignment, or when a small block comes back
  // as an oversized one. An oversized block returned with a smaller size is caught in checked
  // mode (SLABPOOL_CHECKED=1: every call then asks the block's own record); release builds trust
  // a small size, as std::pmr's pools do.
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  // True only for the same arena: memory from one arena cannot be returned to another.
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override;

  // Out of line on purpose: inlined, they would give the fast paths a stack frame.
  [[gnu::noinline]] void* allocate_slow(std::size_t bytes, std::size_t alignment);
  [[gnu::noinline]] void* allocate_other(std::size_t bytes, std::size_t alignment);
  [[gnu::noinline]] void deallocate_slow(void* p, std::size_t bytes,
                                         std::size_t alignment) noexcept;
  [[gnu::noinline]] void deallocate_other(void* p, std::size_t bytes,
                                          std::size_t alignment) noexcept;
  [[gnu::noinline, gnu::cold]] void check_owner() noexcept;
  bool grow(std::size_t need) noexcept;
  void keep_remnant(char* at, std::size_t bytes) noexcept;
  void* bump_aligned(std::size_t size, std::size_t alignment);
  void* allocate_big(std::size_t bytes, std::size_t alignment);
  void deallocate_big(void* p, std::size_t bytes, std::size_t alignment) noexcept;
  detail::own_mapping* big_record(void* p) const noexcept;

  // Hot: read by every call.
  std::uintptr_t owner_ = 0;  // thread pointer of the owner; 0 until first use
  char* cur_ = nullptr;       // bump pointer into the newest chunk (16-aligned)
  char* end_ = nullptr;
  detail::arena_block* free_[detail::kArenaClassCount] = {};  // blocks freed at alignment <= 16
  // Cold: aligned, growth and bookkeeping.
  detail::arena_block* aligned_free_[detail::kArenaClassCount] = {};  // naturally aligned blocks
  detail::arena_chunk* chunks_ = nullptr;                             // newest first
  detail::own_mapping* bigs_ = nullptr;                               // oversized blocks
  std::size_t next_chunk_bytes_;
  std::size_t initial_chunk_bytes_;
  std::size_t mapped_ = 0;
};

}  // namespace slabpool
