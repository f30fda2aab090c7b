// Birth and death of per-thread heaps: creation on a thread's first allocation, hand-over of the
// heap's slabs at thread exit, and adoption of those slabs by other threads.
#pragma once

#include "heap.hpp"

namespace slabpool::detail {

// Creates the calling thread's heap and installs it in tls_heap; nullptr when out of memory.
heap* thread_heap_create() noexcept;

// Whether the calling thread's heap was already handed over at its exit: thread-exit destructors
// that run after ours (pthread keys, in any of their rounds) still allocate.
bool thread_exited() noexcept;
// A block for such a thread, from the one heap exited threads share (under its lock; none of its
// slabs is ever current, so the trimmer releases them like any other): a heap of its own would
// be made after the last destructor round and never handed over. nullptr with ENOMEM.
void* exited_thread_alloc(unsigned cls, std::size_t size) noexcept;

// Returns every slab of `h` that is empty to the segment pool and hands the others to the
// abandoned lists (owner = nullptr), then recycles `h`. Called at thread exit.
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
