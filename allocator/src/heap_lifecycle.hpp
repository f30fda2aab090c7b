// Birth and death of per-thread heaps: creation on a thread's first allocation, hand-over of the
// heap's slabs at thread exit, and adoption of those slabs by other threads.
#pragma once

#include "heap.hpp"

namespace slabpool::detail {

// Creates the calling thread's heap and installs it in tls_heap; nullptr when out of memory.
heap* thread_heap_create() noexcept;

// Returns every slab of `h` that is empty to the segment pool and hands the others to the
// abandoned lists (owner = nullptr), then recycles `h`. Called at thread exit.
void heap_abandon(heap* h) noexcept;

// Pops an abandoned slab of class `cls` and makes `h` its owner; nullptr when there is none.
slab* adopt_abandoned(unsigned cls, heap* h) noexcept;

}  // namespace slabpool::detail
