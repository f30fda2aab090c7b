// The circular list of slabs a heap owns for one size class (slow paths only, under heap::lock).
#pragma once

#include "heap.hpp"

namespace slabpool::detail {

inline void bin_link(heap_bin& bin, slab* s) {
  if (bin.ring == nullptr) {
    s->next = s->prev = s;
    bin.ring = s;
  } else {
    s->next = bin.ring;
    s->prev = bin.ring->prev;
    s->prev->next = s;
    bin.ring->prev = s;
  }
  ++bin.slabs;
  s->in_bin = 1;
}

inline void bin_unlink(heap_bin& bin, slab* s) {
  if (s->next == s) {
    bin.ring = nullptr;
  } else {
    s->prev->next = s->next;
    s->next->prev = s->prev;
    if (bin.ring == s) bin.ring = s->next;
  }
  s->next = s->prev = nullptr;
  if (bin.partial == s) bin.partial = nullptr;
  --bin.slabs;
  s->in_bin = 0;
}

// Calls fn(bin, cls, s) for every slab of every bin of `h`; fn may unlink s (the walk has taken
// its successor already). Caller holds h->lock.
template <class F>
void for_each_bin_slab(heap* h, F fn) {
  for (unsigned cls = 0; cls < kClassCount; ++cls) {
    heap_bin& bin = h->bins[cls];
    slab* s = bin.ring;
    const std::uint32_t count = bin.slabs;
    for (std::uint32_t i = 0; i < count; ++i) {
      slab* next = s->next;
      fn(bin, cls, s);
      s = next;
    }
  }
}

}  // namespace slabpool::detail
