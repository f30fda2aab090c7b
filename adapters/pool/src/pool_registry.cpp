// The process-wide side of the pools: pool indices and tickets, the list of live pools the trim
// epochs walk, the hook into slabpool's trim passes, and thread exit.
//
// Tickets make stale references detectable without touching freed memory: a pool owns an index
// (reused after it dies) and a ticket = (serial << 24) | index (never reused). The table of live
// tickets is a fixed array of lazily allocated chunks that are never freed, so it can be read with
// no lock from any thread (thread-local lookups, handles in checked mode).
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <utility>

#include "front/front.hpp"
#include "pool_internal.hpp"
#include "slabpool/pool_core.hpp"
#include "slabpool/slabpool.h"

namespace slabpool::detail {
namespace {

constexpr unsigned kChunkBits = 12;
constexpr std::uint32_t kChunkSize = 1u << kChunkBits;
constexpr std::uint32_t kMaxChunks = 4096;  // 16 M pools alive at once
constexpr std::uint64_t kIndexMask = (std::uint64_t{1} << 24) - 1;

std::atomic<std::atomic<std::uint64_t>*> g_chunks[kMaxChunks];

// g_lock guards the pool list, index allocation and orphaning at thread exit. A pool cannot be
// unregistered (and its shards freed) while an epoch or an exiting thread holds it. Nothing is
// allocated or freed under it: an allocation may run a trim pass, whose callback (trim_hook) takes
// it again. Memory is prepared before it is taken and released after.
constinit ranked<std::mutex> g_lock{lock_rank::pool_registry};
pool_core* g_pools = nullptr;
std::uint32_t g_next_index = 0;
std::uint32_t* g_free_indices = nullptr;  // a stack in slabpool memory, never freed
std::uint32_t g_free_count = 0;
std::uint32_t g_free_capacity = 0;
std::uint64_t g_serial = 0;

std::once_flag g_once;
exit_key g_exit_key;
bool g_hooked = false;

std::atomic<std::uint64_t>* entry_of(std::uint32_t index) noexcept {
  std::atomic<std::uint64_t>* chunk = g_chunks[index >> kChunkBits].load(std::memory_order_acquire);
  return chunk == nullptr ? nullptr : &chunk[index & (kChunkSize - 1)];
}

// Thread-exit notification: the exiting thread's shards become orphans, which other threads may
// steal from or adopt, and epochs age as usual. Their objects are never lost: the pool destroys
// them at the latest when it dies. Runs again if a later destructor used a pool (it re-arms).
void thread_exit(void* arg) {
  auto* table = static_cast<tls_table*>(arg);
  {
    std::lock_guard guard(g_lock);
    for (std::uint32_t i = 0; i < table->size; ++i) {
      const tls_entry& e = table->entries[i];
      if (e.ticket != 0 && ticket_alive(e.ticket)) e.s->owned.store(0, std::memory_order_release);
    }
  }
  tls_entry* entries = table->entries;
  table->entries = nullptr;
  table->size = 0;
  sp_free(entries);
}

// Ages every pool; returns non-zero while a victim generation remains, so the background trimmer
// keeps running passes until idle pools are empty instead of sleeping with objects cached.
int trim_hook(void*) {
  pool_epoch();
  std::lock_guard guard(g_lock);
  for (pool_core* p = g_pools; p != nullptr; p = p->registry_next) {
    if (p->holds_victims()) return 1;
  }
  return 0;
}

// fork(): the registry lock, then every pool's victim lock (the next rank), so a child never
// inherits one held by a thread that does not exist there.
void lock_for_fork(void*) {
  g_lock.raw().lock();
  for (pool_core* p = g_pools; p != nullptr; p = p->registry_next) p->lock_for_fork();
}
void unlock_after_fork(void*) {
  for (pool_core* p = g_pools; p != nullptr; p = p->registry_next) p->unlock_after_fork();
  g_lock.raw().unlock();
}
fork_participant g_fork_party{
    lock_rank::pool_registry, lock_for_fork, unlock_after_fork,
    unlock_after_fork,        nullptr,       1u << static_cast<unsigned>(lock_rank::pool_victim)};

void init_once() {
  if (!thread_exit_key_create(g_exit_key, thread_exit)) pool_fatal("no thread-exit key left");
  fork_participant_add(&g_fork_party);
  g_hooked = sp_on_trim(trim_hook, nullptr) == 0;
}

// Takes an index and links `pool` in; false (nothing changed) when the index needs a chunk of the
// ticket table and `*spare_chunk` is null. Uses and clears *spare_chunk. Caller holds g_lock.
bool link_pool(pool_core* pool, std::uint32_t* index, std::uint64_t* ticket, void** spare_chunk) {
  std::uint32_t i;
  if (g_free_count > 0) {
    i = g_free_indices[--g_free_count];
  } else {
    if (g_next_index == kMaxChunks * kChunkSize)
      throw std::length_error("slabpool: too many pools");
    i = g_next_index;
    if (entry_of(i) == nullptr) {
      if (*spare_chunk == nullptr) return false;
      g_chunks[i >> kChunkBits].store(static_cast<std::atomic<std::uint64_t>*>(*spare_chunk),
                                      std::memory_order_release);
      *spare_chunk = nullptr;
    }
    ++g_next_index;
  }
  *index = i;
  *ticket = (++g_serial << 24) | i;
  entry_of(i)->store(*ticket, std::memory_order_release);
  pool->registry_prev = nullptr;
  pool->registry_next = g_pools;
  if (g_pools != nullptr) g_pools->registry_prev = pool;
  g_pools = pool;
  return true;
}

void unlink_pool(pool_core* pool, std::uint32_t index) {
  entry_of(index)->store(0, std::memory_order_release);
  if (pool->registry_prev != nullptr)
    pool->registry_prev->registry_next = pool->registry_next;
  else
    g_pools = pool->registry_next;
  if (pool->registry_next != nullptr) pool->registry_next->registry_prev = pool->registry_prev;
}

}  // namespace

void registry_add(pool_core* pool, std::uint32_t* index, std::uint64_t* ticket) {
  std::call_once(g_once, init_once);
  // Memory is taken with g_lock released (see g_lock), then the registration is tried again.
  void* spare_chunk = nullptr;
  for (;;) {
    bool linked;
    try {
      std::lock_guard guard(g_lock);
      linked = link_pool(pool, index, ticket, &spare_chunk);
    } catch (...) {
      sp_free(spare_chunk);
      throw;
    }
    if (linked) break;
    spare_chunk = sp_calloc(kChunkSize, sizeof(std::atomic<std::uint64_t>));
    if (spare_chunk == nullptr) throw std::bad_alloc();
  }
  sp_free(spare_chunk);  // another thread installed the chunk meanwhile
}

void registry_remove(pool_core* pool, std::uint32_t index) noexcept {
  // The stack of reusable indices grows with g_lock released; when that fails the index is
  // simply not reused.
  std::uint32_t* spare = nullptr;
  std::uint32_t spare_capacity = 0;
  void* retired = nullptr;
  {
    std::unique_lock guard(g_lock);
    while (g_free_count == g_free_capacity && spare_capacity <= g_free_capacity) {
      const std::uint32_t want = g_free_capacity == 0 ? 64 : g_free_capacity * 2;
      guard.unlock();
      sp_free(spare);
      spare = static_cast<std::uint32_t*>(sp_malloc(want * sizeof(std::uint32_t)));
      spare_capacity = spare == nullptr ? 0 : want;
      guard.lock();
      if (spare == nullptr) break;
    }
    if (g_free_count == g_free_capacity && spare_capacity > g_free_capacity) {
      if (g_free_count != 0) std::memcpy(spare, g_free_indices, g_free_count * sizeof(*spare));
      retired = g_free_indices;
      g_free_indices = std::exchange(spare, nullptr);
      g_free_capacity = spare_capacity;
    }
    unlink_pool(pool, index);
    if (g_free_count < g_free_capacity) g_free_indices[g_free_count++] = index;
  }
  sp_free(retired);
  sp_free(spare);
}

void tls_reserve(tls_table* table, std::uint32_t index) {
  tls_table& t = *table;
  if (index >= t.size) {
    std::uint32_t size = t.size == 0 ? 16 : t.size;
    while (size <= index) size *= 2;
    auto* entries = static_cast<tls_entry*>(sp_calloc(size, sizeof(tls_entry)));
    if (entries == nullptr) throw std::bad_alloc();
    if (t.size != 0) std::memcpy(entries, t.entries, t.size * sizeof(tls_entry));
    sp_free(t.entries);
    t.entries = entries;
    t.size = size;
  }
  // Arms (or re-arms, in a late thread-exit destructor) the cleanup of this thread's shards.
  thread_exit_key_set(g_exit_key, &t);
}

bool ticket_alive(std::uint64_t ticket) noexcept {
  const std::atomic<std::uint64_t>* e = entry_of(static_cast<std::uint32_t>(ticket & kIndexMask));
  return e != nullptr && e->load(std::memory_order_acquire) == ticket;
}

void pool_fatal(const char* message) noexcept {
  fatal({"pool error: ", message});
}

}  // namespace slabpool::detail

namespace slabpool {

void pool_epoch() noexcept {
  using detail::batch;
  using detail::g_lock;
  using detail::pool_core;
  // Batches are sized under g_lock but allocated with it released (an allocation may run a trim
  // pass, whose hook calls this function), then handed to the pools under it again. A pool made
  // meanwhile waits for the next epoch; one that grew gets what its batch holds.
  struct prepared {
    const pool_core* pool;
    std::uint32_t capacity;
    batch* fresh;
  };
  std::uint32_t pools = 0;
  {
    std::lock_guard guard(g_lock);
    for (pool_core* p = detail::g_pools; p != nullptr; p = p->registry_next) ++pools;
  }
  if (pools == 0) return;
  auto* plan = static_cast<prepared*>(sp_malloc(pools * sizeof(prepared)));
  std::uint32_t planned = 0;
  if (plan != nullptr) {
    {
      std::lock_guard guard(g_lock);
      for (pool_core* p = detail::g_pools; p != nullptr && planned < pools; p = p->registry_next)
        plan[planned++] = {p, p->capacity_for_epoch(), nullptr};
    }
    for (std::uint32_t i = 0; i < planned; ++i) {
      if (plan[i].capacity != 0) plan[i].fresh = detail::new_batch(plan[i].capacity);
    }
  }
  batch* dead = nullptr;
  {
    std::lock_guard guard(g_lock);
    // Pools keep their relative order in the list (new ones go to the front), so one forward walk
    // of the plan pairs each pool with its batch. A pool without one gives up its old victims and
    // keeps its caches until the next epoch.
    std::uint32_t next = 0;
    for (pool_core* p = detail::g_pools; p != nullptr; p = p->registry_next) {
      batch* fresh = nullptr;
      for (std::uint32_t i = next; i < planned; ++i) {
        if (plan[i].pool != p) continue;
        fresh = std::exchange(plan[i].fresh, nullptr);
        next = i + 1;
        break;
      }
      batch* b = p->take_victims_for_epoch(fresh);
      if (b == nullptr) continue;
      b->next = dead;
      dead = b;
    }
  }
  // Outside the lock: batches whose pool died meanwhile, and the destructors (they may use or
  // destroy pools themselves).
  for (std::uint32_t i = 0; i < planned; ++i) detail::destroy_batches(plan[i].fresh);
  sp_free(plan);
  detail::destroy_batches(dead);
}

bool pool_trim_hooked() noexcept {
  std::call_once(detail::g_once, detail::init_once);
  return detail::g_hooked;
}

}  // namespace slabpool
