// Slow paths of the per-thread heap: refilling a class, remote frees, invalid frees.
#include "heap.hpp"

#include <cerrno>
#include <mutex>

#include "bin.hpp"
#include "checked.hpp"
#include "heap_lifecycle.hpp"
#include "report.hpp"
#include "trim.hpp"

namespace slabpool::detail {

constinit slab g_empty_slab{};
constinit heap g_empty_heap{};
constinit thread_local heap* tls_heap SLABPOOL_TLS_MODEL = &g_empty_heap;
constinit std::uintptr_t g_free_screen = kSegmentMask;

namespace {

// Bytes of fresh blocks linked per refill: enough to amortise the slow path, small enough that a
// slab touches memory (and raises RSS) only as it is used.
constexpr std::size_t kCarveBytes = 16 * 1024;
// Slabs of a bin examined per refill before taking a new one; bounds the slow path while still
// visiting every slab of a long bin within a few refills.
constexpr unsigned kScanLimit = 8;

// Refills the empty `free` list of `s`: with the blocks other threads freed (first, so remote lists
// never grow while local frees keep the slab busy), else the owner's own frees, else a batch of
// never-used blocks. Returns whether s->free is now non-empty.
bool slab_refill(slab* s) {
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
  if (s->carved == s->capacity) return false;
  const std::uint32_t batch_max =
      static_cast<std::uint32_t>(s->block_size >= kCarveBytes ? 1 : kCarveBytes / s->block_size);
  const std::uint32_t left = s->capacity - s->carved;
  const std::uint32_t batch = left < batch_max ? left : batch_max;
  char* first = s->area + std::size_t{s->carved} * s->block_size;
  if constexpr (kAsan) {
    for (std::uint32_t i = 0; i < batch; ++i) {
      asan_unpoison(first + std::size_t{i} * s->block_size, kLinkBytes);
    }
  }
  // Link in address order so consecutive allocations walk memory forwards.
  for (std::uint32_t i = 0; i + 1 < batch; ++i) {
    set_next_block(reinterpret_cast<free_block*>(first + std::size_t{i} * s->block_size),
                   reinterpret_cast<free_block*>(first + std::size_t{i + 1} * s->block_size));
  }
  set_next_block(reinterpret_cast<free_block*>(first + std::size_t{batch - 1} * s->block_size),
                 nullptr);
  s->free = reinterpret_cast<free_block*>(first);
  // Atomic (relaxed) only for checked mode, which reads `carved` without the heap lock to tell a
  // never-allocated block from a freed one.
  std::atomic_ref<std::uint32_t>(s->carved).store(s->carved + batch, std::memory_order_relaxed);
  return true;
}

slab* new_slab(heap* h, unsigned cls) {
  bool zeroed = false;
  slab* s = acquire_span_reclaiming({class_slab_units(cls), 1}, &zeroed);
  if (s == nullptr) return nullptr;
  s->block_size = static_cast<std::uint32_t>(class_size(cls));
  s->capacity = static_cast<std::uint32_t>((std::size_t{s->units} << kUnitShift) / s->block_size);
  std::atomic_ref<std::uint32_t>(s->carved).store(0, std::memory_order_relaxed);
  s->free = nullptr;
  s->local_free = nullptr;
  s->local_count.store(0, std::memory_order_relaxed);
  s->remote.store(0, std::memory_order_relaxed);
  s->class_index = static_cast<std::uint8_t>(cls);
  s->kind = slab_kind::small;
  s->seen_empty = false;
  s->owner.store(slab_owner_tag(h), std::memory_order_release);
  // Nothing in a new slab is a block yet; carving unpoisons the link words it writes.
  if constexpr (kAsan) asan_poison(s->area, std::size_t{s->units} << kUnitShift);
  return s;
}

// Finds a slab of class `cls` with free blocks: the current one refilled, another of the bin,
// an abandoned one, or a new one. Caller holds h->lock.
// `scan_all` looks at every slab of the bin (the retry after memory ran out) instead of a few.
slab* refill_class(heap* h, unsigned cls, bool scan_all = false) {
  slab* current = h->current[cls];
  if (current != &g_empty_slab && slab_refill(current)) return current;

  heap_bin& bin = h->bins[cls];
  slab* candidate = bin.ring;
  const unsigned scan = bin.slabs < kScanLimit || scan_all ? bin.slabs : kScanLimit;
  for (unsigned i = 0; i < scan; ++i) {
    slab* s = candidate;
    candidate = candidate->next;
    if (s == current) continue;
    if (s->free != nullptr || slab_refill(s)) {
      bin.ring = candidate;  // continue the rotation after this slab next time
      return s;
    }
  }
  bin.ring = candidate;

  if (slab* s = adopt_abandoned(cls, h)) {
    bin_link(bin, s);
    if (s->free != nullptr || slab_refill(s)) return s;
  }
  slab* s = new_slab(h, cls);
  if (s == nullptr) return nullptr;
  bin_link(bin, s);
  slab_refill(s);
  return s;
}

}  // namespace

void* alloc_slow(heap* h, unsigned cls, std::size_t size) noexcept {
  // The commonest refill: the current slab's staged list ran dry but the owner has freed blocks
  // into it since. Swapping lists needs no lock: other threads never read a heap's current slab
  // lists (only its atomic local_count), so this stays as cheap as a few fast-path operations.
  if (slab* s = h->current[cls]; s->local_free != nullptr) {
    free_block* b = s->local_free;
    s->local_free = nullptr;
    s->local_count.store(0, std::memory_order_relaxed);
    if constexpr (kAsan) asan_unpoison(b, s->block_size);
    s->free = next_block(b);
    return b;
  }
  if (h == &g_empty_heap) {
    if (thread_exited()) [[unlikely]]
      return exited_thread_alloc(cls, size);
    h = thread_heap_create();
    if (h == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
  }
  if (g_checked) [[unlikely]]
    return checked_alloc(h, cls, size);
  trim_on_slow_path();
  slab* s;
  {
    // The owner's refill: the commonest lock of all (every few blocks of a big class). It keeps
    // the hierarchy's books only where the order is asserted (debug builds): in release builds
    // nothing under it can start a pass or take a lock of lower rank, and the books would cost
    // the refill-bound patterns an instruction per block.
    std::unique_lock guard(h->lock.owner_refill());
    s = refill_class(h, cls);
    if (s == nullptr) [[unlikely]] {
      // Out of memory: give back everything idle (this thread's empty slabs, other threads'
      // surplus, empty segments, cached huge blocks) and look through the whole bin once more.
      // The trim pass takes heap locks itself, so this heap's is released meanwhile.
      guard.unlock();
      trim_pass(true);
      guard.lock();
      s = refill_class(h, cls, true);
      if (s == nullptr) {
        errno = ENOMEM;
        return nullptr;
      }
    }
    set_current(h, cls, s);
  }
  free_block* b = s->free;
  if constexpr (kAsan) asan_unpoison(b, s->block_size);
  s->free = next_block(b);
  return b;
}

void* pop_for_checked(heap* h, unsigned cls) noexcept {
  trim_on_slow_path();
  std::unique_lock guard(h->lock);
  // refill_class leaves the ring just past the slab it found: try that slab again first, as the
  // fast path would keep using its current slab.
  slab* s = h->bins[cls].ring != nullptr ? h->bins[cls].ring->prev : nullptr;
  if (s == nullptr || (s->free == nullptr && !slab_refill(s))) s = refill_class(h, cls);
  if (s == nullptr) {  // out of memory: as in alloc_slow
    guard.unlock();
    trim_pass(true);
    guard.lock();
    s = refill_class(h, cls, true);
  }
  if (s == nullptr) return nullptr;
  free_block* b = s->free;
  if constexpr (kAsan) asan_unpoison(b, s->block_size);
  s->free = next_block(b);
  return b;
}

void remote_push(slab* s, void* p) noexcept {
  // Pushing alone is ABA-safe because the owner only ever takes the whole list.
  auto* b = static_cast<free_block*>(p);
  std::uintptr_t old = s->remote.load(std::memory_order_relaxed);
  std::uintptr_t desired;
  do {
    set_next_block(b, remote_list::head(old));
    desired = ((std::uintptr_t{remote_list::count(old)} + 1) << remote_list::kCountShift) |
              reinterpret_cast<std::uintptr_t>(b);
  } while (!s->remote.compare_exchange_weak(old, desired, std::memory_order_release,
                                            std::memory_order_relaxed));
}

void free_slow(slab* s, void* p, std::size_t size_hint) noexcept {
  if (g_checked) [[unlikely]]
    return checked_free(p, size_hint, "free");
  switch (s->kind) {
    case slab_kind::small:
      // Another thread's slab, or an abandoned one.
      if constexpr (kAsan)
        asan_poison(static_cast<char*>(p) + kLinkBytes, s->block_size - kLinkBytes);
      remote_push(s, p);
      return;
    case slab_kind::large:
    case slab_kind::huge:
      large_free(s);
      return;
    case slab_kind::unused:
      break;
  }
  report_fatal("free", p,
               "not an allocated block (double free of a large block, or a stray pointer)");
}

void free_null_or_invalid(slab*, void* p, std::size_t size_hint) noexcept {
  if (p == nullptr) return;
  if (g_checked) return checked_free(p, size_hint, "free");
  report_fatal("free", p, "not a block slabpool handed out (segment-aligned address)");
}

}  // namespace slabpool::detail
