// The process-wide side of the pools: pool indices and tickets, the list of live pools the trim
// epochs walk, the hook into slabpool's trim passes, and thread exit.
//
// Tickets make stale references detectable without touching freed memory: a pool owns an index
// (reused after it dies) and a ticket = (serial << 24) | index (never reused). The table of live
// tickets is a fixed array of lazily allocated chunks that are never freed, so it can be read with
// no lock from any thread (thread-local lookups, handles in checked mode).
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>

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
// unregistered (and its shards freed) while an epoch or an exiting thread holds it.
std::mutex g_lock;
pool_core* g_pools = nullptr;
std::uint32_t g_next_index = 0;
std::uint32_t* g_free_indices = nullptr;  // a stack in slabpool memory, never freed
std::uint32_t g_free_count = 0;
std::uint32_t g_free_capacity = 0;
std::uint64_t g_serial = 0;

std::once_flag g_once;
pthread_key_t g_exit_key;
bool g_hooked = false;

std::atomic<std::uint64_t>* entry_of(std::uint32_t index) noexcept {
  std::atomic<std::uint64_t>* chunk = g_chunks[index >> kChunkBits].load(std::memory_order_acquire);
  return chunk == nullptr ? nullptr : &chunk[index & (kChunkSize - 1)];
}

// pthread key destructor: the exiting thread's shards become orphans, which other threads may
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

void init_once() {
  if (pthread_key_create(&g_exit_key, thread_exit) != 0) pool_fatal("pthread_key_create failed");
  // A child of fork must not inherit g_lock held by a thread that does not exist there.
  pthread_atfork([] { g_lock.lock(); }, [] { g_lock.unlock(); }, [] { g_lock.unlock(); });
  g_hooked = sp_on_trim(trim_hook, nullptr) == 0;
}

}  // namespace

void registry_add(pool_core* pool, std::uint32_t* index, std::uint64_t* ticket) {
  std::call_once(g_once, init_once);
  std::lock_guard guard(g_lock);
  std::uint32_t i;
  if (g_free_count > 0) {
    i = g_free_indices[--g_free_count];
  } else {
    if (g_next_index == kMaxChunks * kChunkSize)
      throw std::length_error("slabpool: too many pools");
    i = g_next_index;
    if (entry_of(i) == nullptr) {
      void* chunk = sp_calloc(kChunkSize, sizeof(std::atomic<std::uint64_t>));
      if (chunk == nullptr) throw std::bad_alloc();
      g_chunks[i >> kChunkBits].store(static_cast<std::atomic<std::uint64_t>*>(chunk),
                                      std::memory_order_release);
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
}

void registry_remove(pool_core* pool, std::uint32_t index) noexcept {
  std::lock_guard guard(g_lock);
  entry_of(index)->store(0, std::memory_order_release);
  if (pool->registry_prev != nullptr)
    pool->registry_prev->registry_next = pool->registry_next;
  else
    g_pools = pool->registry_next;
  if (pool->registry_next != nullptr) pool->registry_next->registry_prev = pool->registry_prev;
  if (g_free_count == g_free_capacity) {
    // Growing the free stack can fail; then the index is simply not reused.
    const std::uint32_t capacity = g_free_capacity == 0 ? 64 : g_free_capacity * 2;
    void* grown = sp_realloc(g_free_indices, capacity * sizeof(std::uint32_t));
    if (grown == nullptr) return;
    g_free_indices = static_cast<std::uint32_t*>(grown);
    g_free_capacity = capacity;
  }
  g_free_indices[g_free_count++] = index;
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
  pthread_setspecific(g_exit_key, &t);
}

bool ticket_alive(std::uint64_t ticket) noexcept {
  const std::atomic<std::uint64_t>* e = entry_of(static_cast<std::uint32_t>(ticket & kIndexMask));
  return e != nullptr && e->load(std::memory_order_acquire) == ticket;
}

void pool_fatal(const char* message) noexcept {
  static const char prefix[] = "slabpool pool error: ";
  ssize_t ignored = write(2, prefix, sizeof(prefix) - 1);
  ignored = write(2, message, std::strlen(message));
  ignored = write(2, "\n", 1);
  (void)ignored;
  abort();
}

}  // namespace slabpool::detail

namespace slabpool {

void pool_epoch() noexcept {
  detail::batch* dead = nullptr;
  {
    std::lock_guard guard(detail::g_lock);
    for (detail::pool_core* p = detail::g_pools; p != nullptr; p = p->registry_next) {
      detail::batch* b = p->take_victims_for_epoch();
      if (b == nullptr) continue;
      b->next = dead;
      dead = b;
    }
  }
  // Destructors run outside the lock: they may use (or destroy) pools themselves.
  detail::destroy_batches(dead);
}

bool pool_trim_hooked() noexcept {
  std::call_once(detail::g_once, detail::init_once);
  return detail::g_hooked;
}

}  // namespace slabpool
