// The heap layer's search for blocks: refilling a class from the heap's own slabs, adopting an
// abandoned slab, or formatting a new one.
#include "heap.hpp"

#include "bin.hpp"
#include "heap_registry.hpp"
#include "runtime/clock.hpp"
#include "runtime/mode.hpp"

namespace slabpool::detail {

constinit slab g_empty_slab{};
constinit heap g_empty_heap{};
constinit thread_local heap* tls_heap SLABPOOL_TLS_MODEL = &g_empty_heap;

namespace {

// Slabs of a bin examined per refill before taking a new one; bounds the slow path while still
// visiting every slab of a long bin within a few refills.
constexpr unsigned kScanLimit = 8;

// Gives the heap's empty slabs (none of them current) back to the segment pool, as their units'
// free resident memory: the next span is cut from them (acquire_span takes resident units first)
// instead of from memory never used. A class that oscillates keeps its empty slab through the
// decay delay only while nothing else needs memory (issue 12: perl held 6.7 MiB of empty slabs
// of five classes while its 4 KiB class took fresh memory). Runs only when the last trim pass
// left empty slabs behind, so at most one scan of the bins per pass interval.
void release_kept_empty_slabs(heap* h) {
  h->empty_kept = 0;
  for_each_bin_slab(h, [h](heap_bin& bin, unsigned cls, slab* s) {
    // A non-current slab stages nothing, except in the shared heap, whose slabs may keep a staged
    // list: those are left alone.
    if (s != h->current[cls] && s->free == nullptr && slab_live_blocks(s, 0) == 0) {
      bin_unlink(bin, s);
      release_span(s, s->seen_empty ? s->empty_since_ms : trim_clock_ms());
    }
  });
}

// Whether every block of `s` is free, counting its staged list (the owner's to walk) only as far
// as needed: a slab with live blocks usually stages few.
bool slab_is_empty(const slab* s) {
  const std::uint32_t returned = slab_returned_blocks(s);
  if (s->carved <= returned) return true;
  std::uint32_t staged_needed = s->carved - returned;
  for (const free_block* b = s->free; b != nullptr; b = next_block(b)) {
    if (--staged_needed == 0) return true;
  }
  return false;
}

// Blocks of at least this size are the ones whose empty current slabs are given back when the heap
// needs a new slab: their slabs hold a few big blocks, so one emptied slab is tens of KiB or more,
// and checking it walks at most 64 staged blocks.
constexpr std::size_t kReleaseCurrentMinBlock = 1024;

// Gives back the owner's current slabs of other classes that are empty, so the next span is cut
// from their resident units. A string grown by realloc leaves one empty slab in every class it
// passed through; a background trim pass never touches a current slab (its owner allocates from it
// without a lock), so they stayed resident for the thread's life (issue 12: python3 held 1.4 MiB
// of them in 6-128 KiB classes at its peak while new slabs faulted in fresh pages). A class used
// again gets a new slab from the pool, cut from resident units: no page fault, one lock.
void release_empty_current_slabs(heap* h, unsigned needed_cls) {
  for (unsigned cls = size_to_class(kReleaseCurrentMinBlock); cls < kClassCount; ++cls) {
    slab* s = h->current[cls];
    if (s == &g_empty_slab || cls == needed_cls || !slab_is_empty(s)) continue;
    bin_unlink(h->bins[cls], s);
    set_current(h, cls, &g_empty_slab);
    release_span(s, trim_clock_ms());
  }
}

slab* new_slab(heap* h, unsigned cls) {
  if (h->empty_kept != 0) release_kept_empty_slabs(h);
  if (!h->shared) release_empty_current_slabs(h, cls);
  bool zeroed = false;
  slab* s = acquire_span_reclaiming({class_slab_units(cls), 1}, &zeroed);
  if (s == nullptr) return nullptr;
  slab_format(s, cls, class_size(cls), slab_owner_tag(h));
  return s;
}

}  // namespace

slab* heap_find_other_slab(heap* h, unsigned cls, bool scan_all) noexcept {
  slab* current = h->current[cls];
  heap_bin& bin = h->bins[cls];
  // A current slab with never-used blocks left that gives way to freed blocks elsewhere becomes
  // the bin's `partial` slab, whose fresh blocks come before a new slab's. The bin remembers one:
  // while it has one, a second such slab stays current and carves instead. Unremembered, a slab
  // made current for one page of blocks and demoted as soon as blocks were freed elsewhere kept
  // the rest of its pages out of reach of the scan window, and the bin took new slabs instead
  // (issue 12: redis's 224-byte class reached 268 slabs at 24 % full in one run, 114 in another,
  // for the same live blocks; 62 at 99 % with this rule).
  const bool current_has_fresh = current != &g_empty_slab && current->carved < current->capacity;
  const bool may_demote = !current_has_fresh || bin.partial == nullptr || bin.partial == current ||
                          bin.partial->carved == bin.partial->capacity;

  // Blocks freed into another slab of the bin; on the way, remember one with never-used blocks and
  // one with other threads' frees too few for a batch.
  slab* candidate = bin.ring;
  slab* uncarved = nullptr;
  slab* unbatched = nullptr;
  const unsigned scan = bin.slabs < kScanLimit || scan_all ? bin.slabs : kScanLimit;
  for (unsigned i = 0; i < scan && may_demote; ++i) {
    slab* s = candidate;
    candidate = candidate->next;
    if (s == current) continue;
    if (s->free != nullptr || (slab_freed_worth_taking(s, bin) && slab_refill_freed(s))) {
      bin.ring = candidate;  // continue the rotation after this slab next time
      if (current_has_fresh) bin.partial = current;
      return s;
    }
    if (unbatched == nullptr && s->remote.load(std::memory_order_relaxed) != 0) unbatched = s;
    if (uncarved == nullptr && s->carved < s->capacity) uncarved = s;
  }
  bin.ring = candidate;

  // The current slab's never-used blocks, while other threads' frees grow into a batch.
  if (current != &g_empty_slab && slab_carve(current)) return current;
  // None left: freed blocks however few, before another slab's never-used ones.
  if (current != &g_empty_slab && slab_refill_freed(current)) return current;
  if (unbatched != nullptr && slab_refill_freed(unbatched)) {
    bin.ring = unbatched->next;
    return unbatched;
  }
  // Never-used blocks of the bin's partial slab, then of the one the scan found.
  if (slab* s = bin.partial; s != nullptr && s != current) {
    bin.partial = nullptr;
    if (slab_carve(s)) return s;
  }
  if (uncarved != nullptr && slab_carve(uncarved)) return uncarved;

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

void* heap_pop_unstaged(heap* h, unsigned cls, bool scan_all) noexcept {
  // heap_find_slab leaves the ring just past the slab it found: try that slab again first, as the
  // fast path would keep using its current slab.
  slab* s = nullptr;
  if (!scan_all && h->bins[cls].ring != nullptr) {
    s = h->bins[cls].ring->prev;
    if (s->free == nullptr && !slab_refill(s)) s = nullptr;
  }
  if (s == nullptr) s = heap_find_slab(h, cls, scan_all);
  if (s == nullptr) return nullptr;
  return slab_pop(s, s->free);
}

}  // namespace slabpool::detail
