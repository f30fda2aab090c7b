// The slab layer: a run of pages serving one size class, and everything done to its lists.
//
// A slab's record lives in its segment's header (segment/segment.hpp holds an array of them, so
// `p & ~(segment size - 1)` and an index find the slab of any block); this layer knows nothing of
// segments. It owns the free-list link encoding, the three lists (staged, local, remote), the
// owner's counter, the one pop and the one local push every path uses, refilling a slab's staged
// list, and the lock-free remote push.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/attributes.hpp"
#include "base/geometry.hpp"

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

// What a span of units is used for. `small` is a slab of a size class (see base/size_class.hpp for
// the one meaning of small, direct and large).
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

// --- the one pop and the one local push ---------------------------------------------------------
// Pops the first block of the staged list, which the caller knows is not empty.
SLABPOOL_ALWAYS_INLINE free_block* slab_pop(slab* s, free_block* b) noexcept {
  if constexpr (kAsan) asan_unpoison(b, s->block_size);
  s->free = next_block(b);
  return b;
}

// The owner's free: pushes p onto the local list and counts it.
SLABPOOL_ALWAYS_INLINE void slab_push_local(slab* s, void* p) noexcept {
  auto* b = static_cast<free_block*>(p);
  // Poisoned before it is counted: once counted, a trimmer may find the slab empty and give its
  // span to another thread, whose new blocks a late poisoning would hide (ASan then reported
  // live blocks and fresh link words as poisoned, about once in 150 runs of the deadlock hunt).
  if constexpr (kAsan) asan_poison(b + 1, s->block_size - kLinkBytes);
  set_next_block(b, s->local_free);
  s->local_free = b;
  // After the push: a trimmer that counts this block as returned must see the list holding it.
  owner_increment(s->local_count);
}

// The owner's cheapest refill: when the staged list ran dry but the owner has freed blocks into
// the slab since, the local list becomes the staged one. Returns its first block, popped, or
// nullptr when the local list is empty too. No lock: other threads never read a heap's current
// slab's lists (only its atomic local_count).
SLABPOOL_ALWAYS_INLINE free_block* slab_pop_local_list(slab* s) noexcept {
  free_block* b = s->local_free;
  if (b == nullptr) return nullptr;
  s->local_free = nullptr;
  s->local_count.store(0, std::memory_order_relaxed);
  return slab_pop(s, b);
}

// --- slow paths (slab.cpp)
// ------------------------------------------------------------------------ Formats the span `s`
// (area and units set) as an empty slab of `block_size`-byte blocks of class `cls`, owned by
// `owner`.
void slab_format(slab* s, unsigned cls, std::size_t block_size, heap* owner) noexcept;

// Links a batch of never-used blocks of `s` as its staged list; false when all are carved.
bool slab_carve(slab* s) noexcept;

// Refills the empty staged list of `s` with blocks freed since: those other threads freed (first,
// so remote lists never grow while local frees keep the slab busy), else the owner's own frees.
// Returns whether s->free is now non-empty. Inline: every refill of the owner's slow path starts
// here.
inline bool slab_refill_freed(slab* s) noexcept {
  if (s->remote.load(std::memory_order_relaxed) != 0) {
    const std::uintptr_t word = s->remote.exchange(0, std::memory_order_acquire);
    s->free = remote_list::head(word);
    return true;
  }
  if (s->local_free != nullptr) {
    s->free = s->local_free;
    s->local_free = nullptr;
    s->local_count.store(0, std::memory_order_relaxed);
    return true;
  }
  return false;
}

// Refills the empty staged list of `s` with freed blocks, else a batch of never-used ones.
inline bool slab_refill(slab* s) noexcept {
  return slab_refill_freed(s) || slab_carve(s);
}

// Moves the staged list onto the local one, so the slab obeys the non-current invariant (staged
// list empty) that lets other threads count its live blocks.
void slab_unstage(slab* s) noexcept;

// Pushes block p onto the remote list of its slab s (any thread; lock-free).
void remote_push(slab* s, void* p) noexcept;

// Blocks of `s` freed since they were last staged: on its local and remote lists.
inline std::uint32_t slab_returned_blocks(const slab* s) {
  return s->local_count.load(std::memory_order_acquire) +
         remote_list::count(s->remote.load(std::memory_order_acquire));
}

// Blocks of `s` the program holds, given how many sit on its `free` list (0 for any slab that is
// not some heap's current slab). Exact when the owner cannot run concurrently, or for non-current
// slabs.
inline std::uint32_t slab_live_blocks(const slab* s, std::uint32_t staged) {
  const std::uint32_t not_live = staged + slab_returned_blocks(s);
  return s->carved > not_live ? s->carved - not_live : 0;
}

inline std::uint32_t list_length(const free_block* b) {
  std::uint32_t n = 0;
  for (; b != nullptr; b = next_block(b)) ++n;
  return n;
}

}  // namespace slabpool::detail
