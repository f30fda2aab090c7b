// The registry of heaps: live heaps (for trim passes, stats and fork), recycled heap structs, the
// heap exited threads share, and the slabs of exited threads waiting to be adopted. (When a heap
// is created and handed over is the process layer's business: process/threads.cpp.)
#pragma once

#include "heap.hpp"

namespace slabpool::detail {

// A new, empty, live heap; nullptr when out of memory.
heap* heap_create() noexcept;

// The one heap threads share once their own was handed over at exit (thread-exit destructors
// that run after ours still allocate): none of its slabs is ever current, so the trimmer
// releases them like any other.
heap* heap_shared() noexcept;

// Returns every slab of `h` that is empty to the segment pool and hands the others to the
// abandoned lists (owner = nullptr), then recycles `h`. Called at thread exit (and, in a forked
// child, for the heaps of threads that do not exist there).
void heap_abandon(heap* h) noexcept;

// Pops an abandoned slab of class `cls` and makes `h` its owner; nullptr when there is none.
slab* adopt_abandoned(unsigned cls, heap* h) noexcept;

// Releases abandoned slabs whose blocks have all been freed; returns whether any abandoned slab
// (still in use) remains.
bool abandoned_release_empty(std::uint64_t now_ms) noexcept;

// acquire_span, but before mapping a new segment it first returns the empty slabs of exited threads
// to the pool: memory already mapped is reused before more is taken from the OS.
slab* acquire_span_reclaiming(span_request request, bool* zeroed) noexcept;

// Calls fn(s, context) for each abandoned slab, holding the abandoned-list lock.
void for_each_abandoned_slab(void (*fn)(slab*, void*), void* context) noexcept;

// Calls fn(h, context) for each live heap (the shared one included) while holding the registry
// lock (fn must not create or destroy heaps; it may take h->lock).
void for_each_live_heap(void (*fn)(heap*, void*), void* context) noexcept;

// fork(): take every registry and heap lock before, release them after; in the child, heaps of
// threads that do not exist there are abandoned.
void heap_registry_lock_for_fork() noexcept;
void heap_registry_unlock_after_fork(bool in_child) noexcept;

}  // namespace slabpool::detail
