// slabpool::arena_resource: bump allocation from OS chunks plus per-class free lists.
//
// Layout of the memory the arena owns:
//  - chunks (64 KiB, doubling to 64 MiB): a 16-byte header, then blocks cut by the bump pointer.
//    Every block is a whole arena size class (below), so a freed block can serve any later request
//    of the same class.
//  - blocks with alignment in (16, 4 KiB] are cut at the natural alignment of their class (the
//    lowest set bit of its size, at most 4 KiB), so any block on that class's aligned list
//    satisfies any alignment that maps to the class; they live on separate lists from the
//    16-aligned ones.
//  - oversized blocks (> 128 KiB or alignment > 4 KiB) get a mapping of their own from the core's
//    one registry of such blocks (segment/own_mapping.hpp, through the front door): one record
//    page, then the block, which therefore starts on a page (at its alignment, when that is
//    larger). The record sits right below the block, so that the block's address alone finds it,
//    whatever size the caller passes back; the arena links its records on its own list so that
//    deallocate unmaps in O(1) and release() finds them all.
//
// Telling the two kinds apart at deallocate: a block that does not start on a 4 KiB boundary
// cannot be oversized, and the fast paths send every block that does to the slow path, which
// asks the record below it (a small block's predecessor in its chunk is readable memory). So a
// caller passing the wrong size gets a report, never an oversized block on a free list or a
// record looked for past the end of a mapping.
#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <new>

#include "front/front.hpp"
#include "slabpool/pmr.hpp"

namespace slabpool::detail {

struct arena_block {
  arena_block* next;
};

struct arena_chunk {
  arena_chunk* next;
  std::size_t bytes;  // the whole mapping, header included
};

namespace {

constexpr std::size_t kChunkHeader = 16;  // keeps the bump pointer 16-aligned
static_assert(sizeof(arena_chunk) <= kChunkHeader);
constexpr std::size_t kMinChunk = std::size_t{64} << 10;
constexpr std::size_t kMaxChunk = std::size_t{64} << 20;
constexpr std::size_t kMaxBumpAlignment = 4096;
// Every oversized block starts on this boundary (the smallest page size there is).
constexpr std::size_t kBigBoundary = 4096;

// Whether p starts on the boundary every oversized block starts on: only such blocks can be
// oversized ones (the third tier then asks for a record).
inline bool on_big_boundary(const void* p) {
  return (reinterpret_cast<std::uintptr_t>(p) & (kBigBoundary - 1)) == 0;
}

// Arena classes. Up to 1 KiB they step by 16 bytes, so the fast path finds a class with one add
// and one shift (class c holds 16*c bytes; class 0, for 0-byte requests, holds 16 so that every
// block is distinct). Above 1 KiB, four per doubling to 128 KiB: an arena block is never freed
// one by one into the core, so its classes need not be the core's (which are finer above 4 KiB).
constexpr std::size_t kStepMax = 1024;
constexpr unsigned kStepClasses = kStepMax / 16 + 1;
constexpr unsigned kQuarterClasses = 4 * 7;  // (1 KiB, 128 KiB]: seven doublings
constexpr unsigned kArenaClasses = kStepClasses + kQuarterClasses;
static_assert(kArenaClasses == kArenaClassCount, "pmr.hpp must mirror the arena class count");

constexpr auto kClassSizes = [] {
  std::array<std::uint32_t, kArenaClasses> sizes{};
  sizes[0] = 16;
  for (unsigned c = 1; c < kStepClasses; ++c) sizes[c] = 16 * c;
  for (unsigned j = 0; j < kQuarterClasses; ++j) {
    const unsigned e = 10 + j / 4;  // (2^e, 2^(e+1)]
    sizes[kStepClasses + j] = (5u + j % 4) << (e - 2);
  }
  return sizes;
}();
static_assert(kClassSizes[kArenaClasses - 1] == kMaxClassSize);

// Class serving `size` (<= kMaxClassSize). Above 1 KiB: four per doubling, written with
// __builtin_clzll (size - 1 > 0 here) so that no compiler adds a zero test.
constexpr unsigned arena_class(std::size_t size) {
  if (size <= kStepMax) return static_cast<unsigned>((size + 15) >> 4);
  const std::size_t s = size - 1;
  const unsigned e = 63 - static_cast<unsigned>(__builtin_clzll(s));  // 2^e <= s < 2^(e+1)
  const unsigned quarter = static_cast<unsigned>(s >> (e - 2)) & 3;
  return 4 * e + quarter + (kStepClasses - 40);
}

// Every class boundary maps as the table says: the class at its size, the next one above it.
constexpr bool classes_match_sizes() {
  for (unsigned c = 1; c < kArenaClasses; ++c) {
    const std::size_t size = kClassSizes[c];
    if (arena_class(size) != c) return false;
    if (c + 1 < kArenaClasses && arena_class(size + 1) != c + 1) return false;
  }
  return true;
}
static_assert(classes_match_sizes());

constexpr std::size_t round_up(std::size_t n, std::size_t to) {
  return (n + to - 1) & ~(to - 1);
}

// A value unique to the calling thread while it lives, read in one instruction where the compiler
// exposes the thread pointer.
inline std::uintptr_t thread_token() noexcept {
#if defined(__has_builtin) && __has_builtin(__builtin_thread_pointer)
  return reinterpret_cast<std::uintptr_t>(__builtin_thread_pointer());
#else
  static thread_local char tag;
  return reinterpret_cast<std::uintptr_t>(&tag);
#endif
}

// What owner_ holds for the calling thread: its token, or in checked mode the token with the low
// bit set, which the fast paths' compare with thread_token() never matches, so checked mode sends
// every call through check_owner and the third tier's checks. Reads SLABPOOL_CHECKED once.
std::uintptr_t owner_token() noexcept {
  return thread_token() | (checked_mode() ? 1 : 0);
}

// Smallest class at or above `size` whose size is a multiple of `alignment` (in (16, 4 KiB]).
// Its blocks are cut at the lowest set bit of their size, hence aligned for every request that
// maps to it. A power-of-two class exists at every doubling, so the loop is short.
unsigned arena_aligned_class(std::size_t size, std::size_t alignment) noexcept {
  const std::size_t want = round_up(std::max(size, alignment), alignment);
  if (want <= kStepMax) return static_cast<unsigned>(want >> 4);
  unsigned cls = arena_class(want);
  while (kClassSizes[cls] % alignment != 0) ++cls;
  return cls;
}

// The class whose blocks a remnant of `bytes` (>= 16, 16-aligned) can serve: the largest class
// that fits in it.
unsigned remnant_class(std::size_t bytes) noexcept {
  if (bytes >= kMaxClassSize) return kArenaClasses - 1;
  unsigned cls = arena_class(bytes);
  if (kClassSizes[cls] > bytes) --cls;
  return cls;
}

std::size_t normal_alignment(std::size_t alignment) {
  return std::max(alignment, kMinAlignment);
}

// A deallocate that does not match its oversized block: abort with both sizes and alignments.
[[noreturn, gnu::cold]] void wrong_size(void* p, const own_mapping* t, std::size_t bytes,
                                        std::size_t alignment) noexcept {
  char problem[256];
  std::snprintf(problem, sizeof(problem),
                "oversized block of %zu bytes (alignment %zu) returned with a%s that differs from "
                "its allocation: %zu bytes (alignment %zu)",
                t->bytes, normal_alignment(t->alignment),
                t->bytes != bytes ? " size" : "n alignment", bytes, normal_alignment(alignment));
  report_fatal("arena_resource::deallocate", p, problem);
}

[[noreturn, gnu::cold]] void not_big(void* p, std::size_t bytes, std::size_t alignment) noexcept {
  char problem[256];
  std::snprintf(problem, sizeof(problem),
                "returned as an oversized block of %zu bytes (alignment %zu), but it is not one "
                "(a size that differs from its allocation, or memory this arena did not allocate)",
                bytes, normal_alignment(alignment));
  report_fatal("arena_resource::deallocate", p, problem);
}

}  // namespace
}  // namespace slabpool::detail

namespace slabpool {

using namespace detail;

arena_resource::arena_resource(std::size_t initial_chunk_bytes) noexcept
    : next_chunk_bytes_(std::max(initial_chunk_bytes, kMinChunk)),
      initial_chunk_bytes_(next_chunk_bytes_) {}

arena_resource::~arena_resource() {
  release();
}

// The fast paths handle up to 1 KiB at alignment <= 16 on the owner thread; everything else,
// including the first use and a wrong thread, goes to the out-of-line path as a tail call, so the
// fast paths need no stack frame.
void* arena_resource::do_allocate(std::size_t bytes, std::size_t alignment) {
  if (alignment <= kMinAlignment && owner_ == thread_token()) [[likely]] {
    // Up to 1 KiB the class is one add and a shift; above, a few bit operations, still inline.
    std::size_t cls;
    if (bytes <= kStepMax) [[likely]] {
      cls = (bytes + 15) >> 4;
    } else if (bytes <= kMaxClassSize) {
      cls = arena_class(bytes);
    } else {
      return allocate_slow(bytes, alignment);
    }
    if (arena_block* b = free_[cls]; b != nullptr) [[likely]] {
      free_[cls] = b->next;
      return b;
    }
    const std::size_t size = kClassSizes[cls];
    if (char* p = cur_; size <= static_cast<std::size_t>(end_ - p)) [[likely]] {
      cur_ = p + size;
      return p;
    }
  }
  return allocate_slow(bytes, alignment);
}

void arena_resource::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
  // The size is trusted here, as std::pmr's pools trust it: an oversized block returned with a
  // small size would be filed as a small block. Checked mode verifies it at no cost to these
  // paths: there owner_ never equals the thread token (see owner_token), so every call takes the
  // third tier, which asks the block's own record. Each branch has its own push (no jump to a
  // shared tail): one instruction less above 1 KiB.
  if (alignment <= kMinAlignment && owner_ == thread_token()) [[likely]] {
    auto* b = static_cast<arena_block*>(p);
    if (bytes <= kStepMax) [[likely]] {
      const std::size_t cls = (bytes + 15) >> 4;
      b->next = free_[cls];
      free_[cls] = b;
      return;
    }
    if (bytes <= kMaxClassSize) {
      const std::size_t cls = arena_class(bytes);
      b->next = free_[cls];
      free_[cls] = b;
      return;
    }
  }
  deallocate_slow(p, bytes, alignment);
}

bool arena_resource::do_is_equal(const std::pmr::memory_resource& other) const noexcept {
  return this == &other;
}

// Returns when the caller owns the arena, claims an arena nobody owns yet (first use, or first use
// after release()), and aborts when another thread owns it.
void arena_resource::check_owner() noexcept {
  if (owner_ == owner_token()) return;
  if (owner_ == 0) {
    owner_ = owner_token();
    return;
  }
  fatal(
      {"arena_resource used from a thread other than its owner; an arena is single-thread (see "
       "slabpool/pmr.hpp), use slabpool::get_resource() to share memory between threads"});
}

// Second tier, still frameless: classes above 1 KiB, refills from the bump pointer. Everything
// else (first use, wrong thread, a new chunk, alignment, oversized) is in the third tier.
void* arena_resource::allocate_slow(std::size_t bytes, std::size_t alignment) {
  if (alignment <= kMinAlignment && bytes <= kMaxClassSize && owner_ == thread_token()) {
    const unsigned cls = arena_class(bytes);
    if (arena_block* b = free_[cls]; b != nullptr) {
      free_[cls] = b->next;
      return b;
    }
    if (char* p = cur_; kClassSizes[cls] <= static_cast<std::size_t>(end_ - p)) {
      cur_ = p + kClassSizes[cls];
      return p;
    }
  }
  return allocate_other(bytes, alignment);
}

void* arena_resource::allocate_other(std::size_t bytes, std::size_t alignment) {
  check_owner();
  if (alignment <= kMinAlignment && bytes <= kMaxClassSize) {
    const unsigned cls = arena_class(bytes);
    if (arena_block* b = free_[cls]; b != nullptr) {  // possible after the owner was claimed
      free_[cls] = b->next;
      return b;
    }
    return bump_aligned(kClassSizes[cls], kMinAlignment);
  }
  if (!is_power_of_two(alignment)) throw std::bad_alloc();
  if (bytes > kMaxClassSize || alignment > kMaxBumpAlignment) {
    return allocate_big(bytes, std::max(alignment, kMinAlignment));
  }
  const unsigned cls = arena_aligned_class(bytes, alignment);
  if (arena_block* b = aligned_free_[cls]; b != nullptr) {
    aligned_free_[cls] = b->next;
    return b;
  }
  const std::size_t size = kClassSizes[cls];
  return bump_aligned(size, std::min(std::size_t{1} << std::countr_zero(size), kMaxBumpAlignment));
}

void arena_resource::deallocate_slow(void* p, std::size_t bytes, std::size_t alignment) noexcept {
  if (alignment <= kMinAlignment && bytes <= kMaxClassSize && owner_ == thread_token()) {
    const unsigned cls = arena_class(bytes);
    auto* b = static_cast<arena_block*>(p);
    b->next = free_[cls];
    free_[cls] = b;
    return;
  }
  deallocate_other(p, bytes, alignment);
}

void arena_resource::deallocate_other(void* p, std::size_t bytes, std::size_t alignment) noexcept {
  check_owner();
  if (bytes > kMaxClassSize || alignment > kMaxBumpAlignment)
    return deallocate_big(p, bytes, alignment);
  // A small size or alignment: refuse it for an oversized block rather than file the block.
  if (on_big_boundary(p)) {
    if (const own_mapping* t = big_record(p)) wrong_size(p, t, bytes, alignment);
  }
  auto* b = static_cast<arena_block*>(p);
  if (alignment <= kMinAlignment) {
    const unsigned cls = arena_class(bytes);
    b->next = free_[cls];
    free_[cls] = b;
  } else {
    const unsigned cls = arena_aligned_class(bytes, alignment);
    b->next = aligned_free_[cls];
    aligned_free_[cls] = b;
  }
}

// Takes a new chunk with room for `need` bytes after its header. The tail of the old chunk becomes
// one free block, so little is lost. False when memory runs out.
//
// Chunks are slabpool blocks (a 64 KiB class, or large blocks), not mappings of their own: a
// released arena's chunks go back to the allocator, which keeps them resident for the next arena
// on any thread (a request-scoped arena then costs no page fault and no syscall) and returns them
// to the OS by the trim's decay once nobody reuses them.
bool arena_resource::grow(std::size_t need) noexcept {
  const std::size_t bytes =
      round_up(std::max(next_chunk_bytes_, need + kChunkHeader), detail::page_size());
  void* mem = heap_malloc(bytes);
  if (mem == nullptr) return false;
  keep_remnant(cur_, static_cast<std::size_t>(end_ - cur_));
  auto* chunk = static_cast<arena_chunk*>(mem);
  chunk->next = chunks_;
  chunk->bytes = bytes;
  chunks_ = chunk;
  mapped_ += bytes;
  cur_ = static_cast<char*>(mem) + kChunkHeader;
  end_ = static_cast<char*>(mem) + bytes;
  next_chunk_bytes_ = std::min(next_chunk_bytes_ * 2, std::max(kMaxChunk, initial_chunk_bytes_));
  return true;
}

// Puts an unused 16-aligned stretch of a chunk on the free list it can serve.
void arena_resource::keep_remnant(char* at, std::size_t bytes) noexcept {
  if (bytes < kMinAlignment) return;
  const unsigned cls = remnant_class(bytes);
  auto* b = reinterpret_cast<arena_block*>(at);
  b->next = free_[cls];
  free_[cls] = b;
}

// Cuts `size` bytes at `alignment` from the current chunk (growing once if needed); the padding
// skipped to reach the alignment goes on a free list rather than being lost.
void* arena_resource::bump_aligned(std::size_t size, std::size_t alignment) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    const auto at = reinterpret_cast<std::uintptr_t>(cur_);
    const std::size_t pad = (alignment - (at & (alignment - 1))) & (alignment - 1);
    if (pad + size <= static_cast<std::size_t>(end_ - cur_)) {
      keep_remnant(cur_, pad);
      char* p = cur_ + pad;
      cur_ = p + size;
      return p;
    }
    if (!grow(size + alignment - kMinAlignment)) break;
  }
  throw std::bad_alloc();
}

void* arena_resource::allocate_big(std::size_t bytes, std::size_t alignment) {
  own_mapping* m = own_mapping_new(bytes, alignment);
  if (m == nullptr) throw std::bad_alloc();
  own_mapping_push(bigs_, m);
  mapped_ += m->map_bytes;
  return m->block();
}

// The record of the oversized block at p (which must start on a 4 KiB boundary and lie in this
// arena's memory, so that the bytes below it are readable), or nullptr for a small block. The
// record's tag rules out all but a small block whose predecessor happens to hold the tag; the
// arena's list rules out that one too.
own_mapping* arena_resource::big_record(void* p) const noexcept {
  own_mapping* m = own_mapping_at(p);
  return m != nullptr && own_mapping_listed(bigs_, m) ? m : nullptr;
}

void arena_resource::deallocate_big(void* p, std::size_t bytes, std::size_t alignment) noexcept {
  // Not on the boundary: a small block (or foreign memory), whose neighbour below need not even
  // be mapped.
  own_mapping* t = on_big_boundary(p) ? big_record(p) : nullptr;
  if (t == nullptr) not_big(p, bytes, alignment);
  if (t->bytes != bytes || normal_alignment(t->alignment) != normal_alignment(alignment)) {
    wrong_size(p, t, bytes, alignment);
  }
  own_mapping_remove(bigs_, t);
  mapped_ -= t->map_bytes;
  own_mapping_destroy(t);
}

void arena_resource::release() noexcept {
  for (arena_chunk* c = chunks_; c != nullptr;) {
    arena_chunk* next = c->next;  // read before the unmap takes the header away
    heap_free_sized(c, c->bytes);
    c = next;
  }
  for (own_mapping* b = bigs_; b != nullptr;) {
    own_mapping* next = b->next;  // the record lives in the mapping about to go
    own_mapping_destroy(b);
    b = next;
  }
  chunks_ = nullptr;
  bigs_ = nullptr;
  cur_ = end_ = nullptr;
  std::fill(std::begin(free_), std::end(free_), nullptr);
  std::fill(std::begin(aligned_free_), std::end(aligned_free_), nullptr);
  next_chunk_bytes_ = initial_chunk_bytes_;
  mapped_ = 0;
  owner_ = 0;
}

}  // namespace slabpool
