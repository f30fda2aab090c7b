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

slab* new_slab(heap* h, unsigned cls) {
  if (h->empty_kept != 0) release_kept_empty_slabs(h);
  bool zeroed = false;
  slab* s = acquire_span_reclaiming({class_slab_units(cls), 1}, &zeroed);
  if (s == nullptr) return nullptr;
  slab_format(s, cls, class_size(cls), slab_owner_tag(h));
  return s;
}

}  // namespace

slab* heap_find_other_slab(heap* h, unsigned cls, bool scan_all) noexcept {
  slab* current = h->current[cls];

  // Blocks freed into another slab of the bin; on the way, remember one with never-used blocks.
  heap_bin& bin = h->bins[cls];
  slab* candidate = bin.ring;
  slab* uncarved = nullptr;
  const unsigned scan = bin.slabs < kScanLimit || scan_all ? bin.slabs : kScanLimit;
  for (unsigned i = 0; i < scan; ++i) {
    slab* s = candidate;
    candidate = candidate->next;
    if (s == current) continue;
    if (s->free != nullptr || slab_refill_freed(s)) {
      bin.ring = candidate;  // continue the rotation after this slab next time
      return s;
    }
    if (uncarved == nullptr && s->carved < s->capacity) uncarved = s;
  }
  bin.ring = candidate;

  // Never-used blocks: the current slab's first, then the one the scan found.
  if (current != &g_empty_slab && slab_carve(current)) return current;
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
