// pool_core's slow paths: attaching a thread, stealing, the victim generation, epochs, stats and
// destruction. The fast paths (pop_local, push_local) are inline in pool_core.hpp.
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>

#include "pool_internal.hpp"
#include "slabpool/pool_core.hpp"
#include "slabpool/slabpool.h"

namespace slabpool::detail {
namespace {

std::size_t shard_bytes(std::uint32_t per_thread) {
  return sizeof(shard) + (per_thread - 1) * sizeof(std::atomic<void*>);
}

}  // namespace

batch* new_batch(std::uint32_t capacity) noexcept {
  void* mem = sp_malloc(sizeof(batch) + (capacity - 1) * sizeof(void*));
  if (mem == nullptr) return nullptr;
  auto* b = static_cast<batch*>(mem);
  b->next = nullptr;
  b->destroy = nullptr;
  b->count = 0;
  b->capacity = capacity;
  return b;
}

void destroy_batches(batch* list) noexcept {
  while (list != nullptr) {
    batch* next = list->next;
    for (std::uint32_t i = 0; i < list->count; ++i) list->destroy(list->objects[i]);
    sp_free(list);
    list = next;
  }
}

pool_core::pool_core(std::uint32_t per_thread, void (*destroy)(void*))
    : per_thread_(per_thread == 0 ? 1 : per_thread), destroy_(destroy) {
  registry_add(this, &index_, &ticket_);
}

pool_core::~pool_core() {
  registry_remove(this, index_);
  // From here no epoch or exiting thread can reach the shards; the user guarantees that no thread
  // is inside get/put any more.
  shard* s = shards.load(std::memory_order_acquire);
  while (s != nullptr) {
    shard* next = s->next.load(std::memory_order_relaxed);
    for (std::uint32_t i = 0; i < per_thread_; ++i) {
      if (void* p = s->slots[i].exchange(nullptr, std::memory_order_acquire)) destroy_(p);
    }
    s->~shard();
    sp_free(s);
    s = next;
  }
  destroy_batches(victim_);
}

shard* pool_core::attach(tls_table* table) {
  tls_reserve(table, index_);
  shard* found = nullptr;
  // Adopt the shard of a thread that exited, so the list stays as long as the most threads that
  // ever used the pool at once, and its cached objects serve this thread.
  for (shard* s = shards.load(std::memory_order_acquire); s != nullptr;
       s = s->next.load(std::memory_order_acquire)) {
    std::uint32_t orphan = 0;
    if (s->owned.load(std::memory_order_relaxed) == 0 &&
        s->owned.compare_exchange_strong(orphan, 1, std::memory_order_acquire)) {
      found = s;
      break;
    }
  }
  if (found == nullptr) {
    void* mem = sp_aligned_alloc(alignof(shard), shard_bytes(per_thread_));
    if (mem == nullptr) throw std::bad_alloc();
    found = new (mem) shard();
    for (std::uint32_t i = 1; i < per_thread_; ++i) new (&found->slots[i]) std::atomic<void*>();
    shard* head = shards.load(std::memory_order_relaxed);
    do {
      found->next.store(head, std::memory_order_relaxed);
    } while (!shards.compare_exchange_weak(head, found, std::memory_order_release,
                                           std::memory_order_relaxed));
  }
  table->entries[index_] = tls_entry{ticket_, found};
  return found;
}

void* pool_core::get_slow(shard* self) noexcept {
  // Other threads' caches first, from the top of their stacks down: the owner's push_local
  // reclaims emptied top slots, so a thread that only puts (a consumer) keeps finding room.
  for (shard* s = shards.load(std::memory_order_acquire); s != nullptr;
       s = s->next.load(std::memory_order_acquire)) {
    if (s == self) continue;
    std::uint32_t top = s->top.load(std::memory_order_relaxed);
    if (top > per_thread_) top = per_thread_;
    while (top > 0) {
      std::atomic<void*>& slot = s->slots[--top];
      if (slot.load(std::memory_order_relaxed) == nullptr) continue;
      if (void* p = slot.exchange(nullptr, std::memory_order_acquire)) {
        self->steals.bump();
        return p;
      }
    }
  }
  // Then the victim generation: objects cached before the last epoch get one more chance.
  std::lock_guard guard(victim_lock_);
  if (victim_ == nullptr || victim_->count == 0) {
    self->misses.bump();
    return nullptr;
  }
  return victim_->objects[--victim_->count];
}

std::uint32_t pool_core::capacity_for_epoch() const noexcept {
  std::uint32_t shard_count = 0;
  for (shard* s = shards.load(std::memory_order_acquire); s != nullptr;
       s = s->next.load(std::memory_order_acquire))
    ++shard_count;
  return shard_count * per_thread_;
}

batch* pool_core::take_victims_for_epoch(batch* fresh) noexcept {
  if (fresh != nullptr) {
    fresh->destroy = destroy_;
    // Shards are prepended: skipping those beyond the batch's room skips the newest ones, added
    // since the caller sized it; their objects were just cached and wait for the next epoch.
    const std::uint32_t shard_count = fresh->capacity / per_thread_;
    // One snapshot of the head: shards are only ever prepended, so the list below it is fixed.
    shard* const head = shards.load(std::memory_order_acquire);
    std::uint32_t listed = 0;
    for (shard* s = head; s != nullptr; s = s->next.load(std::memory_order_acquire)) ++listed;
    std::uint32_t skip = listed > shard_count ? listed - shard_count : 0;
    for (shard* s = head; s != nullptr; s = s->next.load(std::memory_order_acquire)) {
      if (skip > 0) {
        --skip;
        continue;
      }
      for (std::uint32_t i = 0; i < per_thread_; ++i) {
        if (s->slots[i].load(std::memory_order_relaxed) == nullptr) continue;
        if (void* p = s->slots[i].exchange(nullptr, std::memory_order_acquire))
          fresh->objects[fresh->count++] = p;
      }
    }
  }
  batch* old;
  {
    std::lock_guard guard(victim_lock_);
    old = victim_;
    victim_ = fresh;
  }
  if (old != nullptr) trimmed_.fetch_add(old->count, std::memory_order_relaxed);
  epochs_.fetch_add(1, std::memory_order_relaxed);
  if (old != nullptr) old->next = nullptr;
  return old;
}

bool pool_core::holds_victims() const noexcept {
  std::lock_guard guard(victim_lock_);
  return victim_ != nullptr && victim_->count != 0;
}

void pool_core::advance_epoch() noexcept {
  batch* fresh = nullptr;
  if (const std::uint32_t capacity = capacity_for_epoch(); capacity != 0)
    fresh = new_batch(capacity);
  destroy_batches(take_victims_for_epoch(fresh));
}

pool_stats pool_core::stats() const noexcept {
  pool_stats out;
  for (shard* s = shards.load(std::memory_order_acquire); s != nullptr;
       s = s->next.load(std::memory_order_acquire)) {
    out.misses += s->misses.read();  // before gets, so that misses <= gets while threads run
    out.gets += s->gets.read();
    out.steals += s->steals.read();
    out.puts += s->puts.read();
    out.overflows += s->overflows.read();
    for (std::uint32_t i = 0; i < per_thread_; ++i)
      out.cached += s->slots[i].load(std::memory_order_relaxed) != nullptr;
  }
  {
    std::lock_guard guard(victim_lock_);
    if (victim_ != nullptr) out.cached += victim_->count;
  }
  if (out.misses > out.gets) out.misses = out.gets;  // (relaxed reads: keep hits from wrapping)
  out.hits = out.gets - out.misses;
  out.trimmed = trimmed_.load(std::memory_order_relaxed);
  out.epochs = epochs_.load(std::memory_order_relaxed);
  return out;
}

}  // namespace slabpool::detail
