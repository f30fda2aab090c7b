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
  --bin.slabs;
  s->in_bin = 0;
}

}  // namespace slabpool::detail
