#include "heap_registry.hpp"

#include <mutex>
#include <new>

#include "platform/platform.hpp"
#include "runtime/clock.hpp"
#include "runtime/mode.hpp"

namespace slabpool::detail {
namespace {

// Heap structs come from mapped chunks and are recycled through a free list; they are never
// returned to the OS (a few KiB per thread that ever ran concurrently).
constexpr std::size_t kHeapChunkBytes = 64 * 1024;

// Lock order (slabpool/detail/locks.hpp): registry.lock -> heap::lock -> abandoned_lock ->
// segment pool lock.
struct heap_registry {
  ranked<os_mutex> lock{lock_rank::heap_registry};  // the live list, the recycled list, the chunk
  heap* live = nullptr;
  heap* recycled = nullptr;  // linked through next_live
  char* chunk_next = nullptr;
  char* chunk_end = nullptr;
  // Slabs of exited threads, per class, linked through slab::next. Atomic heads so a refill can
  // peek without the lock; changed only under it.
  std::atomic<slab*> abandoned[kClassCount] = {};
  ranked<os_mutex> abandoned_lock{lock_rank::abandoned};
};
constinit heap_registry g_registry;

constinit heap g_shared_heap{};
std::atomic<bool> g_shared_heap_linked = false;

heap* shared_heap() {
  if (!g_shared_heap_linked.load(std::memory_order_acquire)) {
    std::lock_guard guard(g_registry.lock);
    if (!g_shared_heap_linked.load(std::memory_order_relaxed)) {
      heap* h = &g_shared_heap;
      h->shared = true;
      h->live = true;
      h->prev_live = nullptr;
      h->next_live = g_registry.live;
      if (h->next_live != nullptr) h->next_live->prev_live = h;
      g_registry.live = h;
      g_shared_heap_linked.store(true, std::memory_order_release);
    }
  }
  return &g_shared_heap;
}

heap* heap_struct_take() {
  std::lock_guard guard(g_registry.lock);
  heap* h = g_registry.recycled;
  if (h != nullptr) {
    g_registry.recycled = h->next_live;
  } else {
    constexpr std::size_t kStride = (sizeof(heap) + 63) & ~std::size_t{63};
    if (g_registry.chunk_next == nullptr ||
        static_cast<std::size_t>(g_registry.chunk_end - g_registry.chunk_next) < kStride) {
      void* chunk = os::map_aligned(kHeapChunkBytes, os::page_size());
      if (chunk == nullptr) return nullptr;
      g_registry.chunk_next = static_cast<char*>(chunk);
      g_registry.chunk_end = g_registry.chunk_next + kHeapChunkBytes;
    }
    h = reinterpret_cast<heap*>(g_registry.chunk_next);
    g_registry.chunk_next += kStride;
  }
  new (h) heap();
  h->live = true;
  h->prev_live = nullptr;
  h->next_live = g_registry.live;
  if (h->next_live != nullptr) h->next_live->prev_live = h;
  g_registry.live = h;
  return h;
}

void heap_struct_recycle(heap* h) {
  std::lock_guard guard(g_registry.lock);
  if (h->prev_live != nullptr)
    h->prev_live->next_live = h->next_live;
  else
    g_registry.live = h->next_live;
  if (h->next_live != nullptr) h->next_live->prev_live = h->prev_live;
  h->live = false;
  h->next_live = g_registry.recycled;
  g_registry.recycled = h;
}

}  // namespace

heap* heap_create() noexcept {
  return heap_struct_take();
}

heap* heap_shared() noexcept {
  return shared_heap();
}

void heap_abandon(heap* h) noexcept {
  {
    std::lock_guard heap_guard(h->lock);
    for (unsigned cls = 0; cls < kClassCount; ++cls) {
      heap_bin& bin = h->bins[cls];
      slab* s = bin.ring;
      for (std::uint32_t i = 0; i < bin.slabs; ++i) {
        slab* next = s->next;
        s->in_bin = 0;
        slab_unstage(s);
        if (slab_live_blocks(s, 0) == 0) {
          release_span(s, trim_clock_ms());
        } else {
          // Other threads may still free into it: their pushes land on `remote`, whoever owns it.
          s->owner.store(nullptr, std::memory_order_release);
          std::lock_guard guard(g_registry.abandoned_lock);
          s->next = g_registry.abandoned[cls].load(std::memory_order_relaxed);
          s->prev = nullptr;
          s->in_bin = 1;
          g_registry.abandoned[cls].store(s, std::memory_order_relaxed);
        }
        s = next;
      }
      bin = heap_bin{};
      set_current(h, cls, &g_empty_slab);
    }
  }
  heap_struct_recycle(h);
}

slab* adopt_abandoned(unsigned cls, heap* h) noexcept {
  if (g_registry.abandoned[cls].load(std::memory_order_relaxed) == nullptr) return nullptr;
  std::lock_guard guard(g_registry.abandoned_lock);
  // Take the first slab with a free block. Full ones stay for later (their blocks may still come
  // back), so a pile of full slabs on top cannot hide the reusable ones below; the scan is bounded
  // to keep the refill short.
  constexpr unsigned kAdoptScan = 32;
  slab* previous = nullptr;
  slab* s = g_registry.abandoned[cls].load(std::memory_order_relaxed);
  for (unsigned i = 0; s != nullptr && i < kAdoptScan; ++i, previous = s, s = s->next) {
    if (slab_live_blocks(s, 0) == s->capacity) continue;
    if (previous == nullptr)
      g_registry.abandoned[cls].store(s->next, std::memory_order_relaxed);
    else
      previous->next = s->next;
    s->in_bin = 0;
    s->owner.store(slab_owner_tag(h), std::memory_order_release);
    return s;
  }
  return nullptr;
}

}  // namespace slabpool::detail

namespace slabpool::detail {

void for_each_live_heap(void (*fn)(heap*, void*), void* context) noexcept {
  std::lock_guard guard(g_registry.lock);
  for (heap* h = g_registry.live; h != nullptr; h = h->next_live) fn(h, context);
}

bool abandoned_release_empty(std::uint64_t now_ms) noexcept {
  bool remaining = false;
  std::lock_guard guard(g_registry.abandoned_lock);
  for (unsigned cls = 0; cls < kClassCount; ++cls) {
    slab* previous = nullptr;
    slab* s = g_registry.abandoned[cls].load(std::memory_order_relaxed);
    while (s != nullptr) {
      slab* next = s->next;
      if (slab_live_blocks(s, 0) == 0) {
        if (previous == nullptr)
          g_registry.abandoned[cls].store(next, std::memory_order_relaxed);
        else
          previous->next = next;
        s->in_bin = 0;
        release_span(s, now_ms);
      } else {
        remaining = true;
        previous = s;
      }
      s = next;
    }
  }
  return remaining;
}

slab* acquire_span_reclaiming(span_request request, bool* zeroed) noexcept {
  if (slab* s = acquire_span(request, zeroed, false)) return s;
  abandoned_release_empty(trim_clock_ms());
  return acquire_span(request, zeroed, true);
}

void for_each_abandoned_slab(void (*fn)(slab*, void*), void* context) noexcept {
  std::lock_guard guard(g_registry.abandoned_lock);
  for (unsigned cls = 0; cls < kClassCount; ++cls) {
    for (slab* s = g_registry.abandoned[cls].load(std::memory_order_relaxed); s != nullptr;
         s = s->next) {
      fn(s, context);
    }
  }
}

void heap_registry_lock_for_fork() noexcept {
  g_registry.lock.raw().lock();
  for (heap* h = g_registry.live; h != nullptr; h = h->next_live) h->lock.raw().lock();
  g_registry.abandoned_lock.raw().lock();
}

void heap_registry_unlock_after_fork(bool in_child) noexcept {
  g_registry.abandoned_lock.raw().unlock();
  for (heap* h = g_registry.live; h != nullptr; h = h->next_live) h->lock.raw().unlock();
  if (!in_child) {
    g_registry.lock.raw().unlock();
    return;
  }
  // Only the forking thread exists in the child: hand every other heap's slabs over for adoption
  // so the child can reuse their free memory.
  heap* h = g_registry.live;
  g_registry.lock.raw().unlock();
  while (h != nullptr) {
    heap* next = h->next_live;
    if (h != tls_heap && !h->shared) heap_abandon(h);
    h = next;
  }
}

}  // namespace slabpool::detail
