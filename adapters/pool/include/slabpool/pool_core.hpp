// slabpool — the type-erased machinery under object_pool<T> and buffer_pool (not a public API).
//
// A pool_core caches opaque object pointers. Each thread that uses a pool gets a shard: a stack
// of `per_thread` atomic slots. The owner thread works at the top of its stack: get is one atomic
// exchange, put one release store, no lock. Every other party (threads stealing on a miss, the
// trim epoch, thread exit, pool destruction) only ever *empties* slots, with the same exchange, so
// no object is handed out twice and only the owner ever fills a slot. Each trim epoch moves what
// the shards hold into a victim batch and destroys the previous victim batch: an object not
// reused for a whole epoch is destroyed at the next (Go's sync.Pool rule).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "slabpool/detail/locks.hpp"
#include "slabpool/export.h"

namespace slabpool {

// Counters of one pool, summed over its threads when read (each thread counts in its own shard,
// so counting costs no shared cache line). Exact once the pool's users are quiet.
struct pool_stats {
  std::uint64_t gets = 0;       // get() calls
  std::uint64_t hits = 0;       // gets served by a cached object (own, stolen or victim)
  std::uint64_t misses = 0;     // gets that made a new object (gets - hits)
  std::uint64_t steals = 0;     // hits taken from another thread's cache
  std::uint64_t puts = 0;       // objects given back (handles destroyed, put() calls)
  std::uint64_t drops = 0;      // puts refused: capacity above the cap (buffer_pool only)
  std::uint64_t overflows = 0;  // puts destroyed because the thread's cache was full
  std::uint64_t trimmed = 0;    // cached objects destroyed by trim epochs
  std::uint64_t cached = 0;     // objects cached now (thread caches + victim generation)
  std::uint64_t epochs = 0;     // trim epochs this pool has seen
};

namespace detail {

// Owner-only counter: a plain increment made visible to readers without a read-modify-write.
struct counter {
  std::atomic<std::uint64_t> value{0};
  void bump(std::uint64_t n = 1) noexcept {
    value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t read() const noexcept { return value.load(std::memory_order_relaxed); }
};

// One thread's cache for one pool. Allocated with its slots in one block, cache-line aligned;
// lives until the pool dies (an exiting thread leaves it orphaned for the next thread to adopt).
struct alignas(64) shard {
  std::atomic<std::uint32_t> top{0};    // owner's stack height; a hint for thieves
  std::atomic<std::uint32_t> owned{1};  // 0 = orphaned (its thread exited): free to adopt
  std::atomic<shard*> next{nullptr};    // the pool's shard list: append-only, lock-free reads
  // Hits are gets - misses: a hit (the common case) counts once, in gets.
  counter gets, misses, steals, puts, overflows;
  std::atomic<void*> slots[1];  // really per_thread slots (allocated with the shard)
};

// A thread's map from pool index to its shard: entries[index] is valid when its ticket matches
// the pool's (tickets are never reused, indices are). Plain thread_local data,
// constant-initialised, so the lookup is a TLS load and two compares; grown and released by
// pool_registry.cpp (through a pointer: the library never names this variable itself).
struct tls_entry {
  std::uint64_t ticket;
  shard* s;
};
struct tls_table {
  tls_entry* entries;
  std::uint32_t size;
};
inline constinit thread_local tls_table t_pool_table{nullptr, 0};

// A batch of objects detached from a pool (the victim generation, or the next to destroy).
struct batch;

// Type-erased pool. `destroy` frees one cached object and must not depend on the pool (epochs
// destroy victims after releasing their locks, possibly after the pool is gone).
class SLABPOOL_API pool_core {
 public:
  // Registers the pool (trim epochs, ticket); throws std::bad_alloc or std::length_error.
  pool_core(std::uint32_t per_thread, void (*destroy)(void* object));
  pool_core(const pool_core&) = delete;
  pool_core& operator=(const pool_core&) = delete;
  // Unregisters, then destroys every cached object. No thread may be using the pool any more.
  ~pool_core();

  // This thread's shard, attached on first use. Throws std::bad_alloc (first use only).
  shard* local() {
    tls_table& t = t_pool_table;
    if (index_ < t.size && t.entries[index_].ticket == ticket_) [[likely]]
      return t.entries[index_].s;
    return attach(&t);
  }

  // Pops from the thread's own stack; nullptr when it is empty. Counts the get.
  void* pop_local(shard* s) noexcept {
    s->gets.bump();
    std::uint32_t top = s->top.load(std::memory_order_relaxed);
    while (top > 0) {
      --top;
      std::atomic<void*>& slot = s->slots[top];
      // A load first: after an epoch or a steal most slots under a stale top are empty, and an
      // exchange on them would cost a locked instruction each.
      if (slot.load(std::memory_order_relaxed) == nullptr) continue;
      if (void* p = slot.exchange(nullptr, std::memory_order_acquire)) {
        s->top.store(top, std::memory_order_relaxed);
        return p;
      }
    }
    s->top.store(0, std::memory_order_relaxed);
    return nullptr;
  }

  // Pushes onto the thread's own stack; false when it is full (the caller destroys the object).
  bool push_local(shard* s, void* p) noexcept {
    s->puts.bump();
    std::uint32_t top = s->top.load(std::memory_order_relaxed);
    if (top == per_thread_) [[unlikely]] {
      // Thieves empty slots from the top down: reclaim the emptied ones before calling it full.
      while (top > 0 && s->slots[top - 1].load(std::memory_order_relaxed) == nullptr) --top;
      if (top == per_thread_) {
        s->overflows.bump();
        return false;
      }
    }
    // Slots at or above top are empty and only the owner fills them: a store suffices.
    s->slots[top].store(p, std::memory_order_release);
    s->top.store(top + 1, std::memory_order_relaxed);
    return true;
  }

  // After a local miss: steals from another thread's cache, then takes from the victim
  // generation. nullptr when the pool holds nothing (counted as the get's miss).
  void* get_slow(shard* self) noexcept;

  // Ends an epoch for this pool: destroys the victim generation and makes the thread caches the
  // new one. Runs the destroy function on the calling thread. Never fails (when memory for the
  // victim list runs out, the caches stay where they are until the next epoch).
  void advance_epoch() noexcept;

  // Counters summed over every shard.
  pool_stats stats() const noexcept;

  // The identity a handle keeps to detect use after the pool is gone (see ticket_alive).
  std::uint64_t ticket() const noexcept { return ticket_; }
  std::uint32_t per_thread() const noexcept { return per_thread_; }

  // The registry's private interface (pool_registry.cpp, pool_core.cpp).
  // Moves the thread caches into `fresh` (allocated by the caller, outside every lock, with room
  // for capacity_for_epoch() objects; nullptr leaves the caches where they are) and returns the
  // previous victim generation for the caller to destroy (outside every lock).
  batch* take_victims_for_epoch(batch* fresh) noexcept;
  // Room an epoch's batch needs now: per_thread slots for every shard.
  std::uint32_t capacity_for_epoch() const noexcept;
  // fork(): the victim lock, taken by the registry's fork participant.
  void lock_for_fork() noexcept { victim_lock_.raw().lock(); }
  void unlock_after_fork() noexcept { victim_lock_.raw().unlock(); }
  // Whether the victim generation holds objects (a later epoch still has work).
  bool holds_victims() const noexcept;
  pool_core* registry_next = nullptr;  // the registry's list of live pools
  pool_core* registry_prev = nullptr;
  std::atomic<shard*> shards{nullptr};

 private:
  // Finds or makes this thread's shard and records it in `table`, which is the caller's
  // t_pool_table: passed in because each module (program, shared library) that includes this
  // header may have its own copy of the inline thread_local.
  [[gnu::noinline]] shard* attach(tls_table* table);

  std::uint32_t index_;
  std::uint32_t per_thread_;
  std::uint64_t ticket_;
  void (*destroy_)(void*);
  // Guards victim_ (taken on misses and epochs, never on hits). Nothing is allocated, freed or
  // destroyed under it.
  mutable ranked<std::mutex> victim_lock_{lock_rank::pool_victim};
  batch* victim_ = nullptr;
  std::atomic<std::uint64_t> trimmed_{0};
  std::atomic<std::uint64_t> epochs_{0};
};

// True while the pool that issued `ticket` lives (one load from the registry's table, no lock).
SLABPOOL_API bool ticket_alive(std::uint64_t ticket) noexcept;

// Prints `message` to stderr and aborts: the pool adapters' checked-mode errors.
[[noreturn]] SLABPOOL_API void pool_fatal(const char* message) noexcept;

}  // namespace detail

// Ends a trim epoch in every pool of the process, as a trim pass does (slabpool calls this after
// every pass: the background trimmer, sp_trim, sp_trim_decay). Runs cached objects' destructors on
// the calling thread. Never fails.
SLABPOOL_API void pool_epoch() noexcept;

// True when the pools are hooked into slabpool's trim passes (false only if sp_on_trim's table
// was full when the first pool was made: then only pool_epoch() ages the pools).
SLABPOOL_API bool pool_trim_hooked() noexcept;

}  // namespace slabpool
