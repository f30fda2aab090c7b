// slabpool — the lock hierarchy (not a public API: the adapters' and the core's locks use it).
//
// Every lock in slabpool has a rank, listed once below. Three rules follow from it:
//   1. A thread takes a lock only while it holds locks of lower rank (checked at run time in debug
//      builds and in checked mode: a violation aborts with both lock names, the day it is written).
//   2. fork() takes every lock in rank order and releases them after, in parent and child: a lock
//      is registered as a fork participant when it is created, so none can be forgotten.
//   3. No callback, user hook or destructor of a user object runs while a thread holds any of these
//      locks, and a trim pass started by a thread that holds one skips itself (it would run the
//      callbacks). held_lock_ranks() == 0 is the test.
// Locks that are only ever taken on their own (leaves) still get a rank, so the fork handlers and
// the order check see them.
#pragma once

#include <cstdint>

#include "slabpool/export.h"

namespace slabpool::detail {

enum class lock_rank : std::uint8_t {
  // Adapters: taken before any core lock; none is held while calling into the allocator.
  pool_registry = 1,  // pool list, indices (adapters/pool/src/pool_registry.cpp)
  pool_victim,        // one object_pool's victim generation (pool_core.cpp)
  resource_pool,      // one resource_pool's state (adapters/pool)
  // Core.
  trim_callbacks,  // sp_on_trim's registration (trim/trim.cpp); passes read the table without it
  trimmer,         // the background trimmer's sleep and start/stop (trim/trimmer.cpp)
  heap_registry,   // live and recycled heaps (heap/heap_registry.cpp)
  heap,            // one heap's bins, for its slow paths and the trimmer (heap/heap.hpp)
  abandoned,       // slabs of exited threads (heap/heap_registry.cpp)
  quarantine,      // checked mode's freed blocks (checked/checked.cpp)
  own_mappings,    // blocks with a mapping of their own, registered (segment/own_mapping.cpp)
  segment_pool,    // segments, spans, the huge-block cache (segment/span_pool.cpp)
  count_
};
static_assert(static_cast<unsigned>(lock_rank::count_) <= 32, "ranks are bits of one word");

// Name of a rank, for reports.
SLABPOOL_API const char* lock_rank_name(lock_rank rank) noexcept;

// Bit (1 << rank) for every rank the calling thread holds. Inside the library it is reached like
// the heap pointer (initial-exec TLS), so the books cost the allocator's slow paths a few
// instructions per lock and no call.
#ifdef SLABPOOL_BUILDING_LIBRARY
#define SLABPOOL_RANKS_TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define SLABPOOL_RANKS_TLS_MODEL
#endif
SLABPOOL_API extern constinit thread_local std::uint32_t t_held_lock_ranks SLABPOOL_RANKS_TLS_MODEL;

// Called when a thread takes `rank` while holding `held` (ranks at or above it): reports and
// aborts in debug builds and in checked mode, returns otherwise.
SLABPOOL_API void lock_order_violated(lock_rank rank, std::uint32_t held) noexcept;

inline std::uint32_t held_lock_ranks() noexcept {
  return t_held_lock_ranks;
}

// Bookkeeping around a lock of `rank`: call before blocking on it (checks the order and records
// it), and after releasing it. `try_acquired` records a lock taken with a try-lock (no order check:
// a try never waits).
inline void lock_rank_acquire(lock_rank rank) noexcept {
  const std::uint32_t bit = std::uint32_t{1} << static_cast<unsigned>(rank);
  // Every bit at or above `bit` is a lock of the same or a higher rank.
  if (t_held_lock_ranks >= bit) [[unlikely]]
    lock_order_violated(rank, t_held_lock_ranks & ~(bit - 1));
  t_held_lock_ranks |= bit;
}
inline void lock_rank_try_acquired(lock_rank rank) noexcept {
  t_held_lock_ranks |= std::uint32_t{1} << static_cast<unsigned>(rank);
}
inline void lock_rank_release(lock_rank rank) noexcept {
  t_held_lock_ranks &= ~(std::uint32_t{1} << static_cast<unsigned>(rank));
}

// A party to fork(): `prepare` takes its locks before fork, `parent` / `child` release them (or
// reset state) after. Participants run in rank order before fork and in reverse order after.
// The struct is the caller's (intrusive: registering never allocates) and must stay alive and
// unchanged until it is removed.
struct fork_participant {
  lock_rank rank;
  void (*prepare)(void* context);
  void (*parent)(void* context);
  void (*child)(void* context);
  void* context;
  // Further ranks this participant's prepare takes (e.g. the heap registry takes every heap's
  // lock too), as bits 1 << rank.
  std::uint32_t also_takes = 0;
  fork_participant* next = nullptr;  // the registry's list, in rank order
  fork_participant* prev = nullptr;
};
SLABPOOL_API void fork_participant_add(fork_participant* participant) noexcept;
SLABPOOL_API void fork_participant_remove(fork_participant* participant) noexcept;
// Ranks the registered participants take (bits 1 << rank). A test checks that every rank of the
// list above is covered once the core and the pools are in use, so a new lock cannot be left out
// of fork().
SLABPOOL_API std::uint32_t fork_covered_ranks() noexcept;

// A BasicLockable that keeps the hierarchy's books around `Lock` (std::mutex, spin_lock, ...).
// Works with std::lock_guard, std::unique_lock and std::condition_variable_any.
template <class Lock>
class ranked {
 public:
  explicit constexpr ranked(lock_rank rank) noexcept : rank_(rank) {}
  ranked(const ranked&) = delete;
  ranked& operator=(const ranked&) = delete;

  void lock() noexcept {
    lock_rank_acquire(rank_);
    lock_.lock();
  }
  bool try_lock() noexcept {
    if (!lock_.try_lock()) return false;
    lock_rank_try_acquired(rank_);
    return true;
  }
  void unlock() noexcept {
    lock_.unlock();
    lock_rank_release(rank_);
  }
  // The bare lock, for fork handlers (they take every lock at once, outside the order check).
  Lock& raw() noexcept { return lock_; }
  // The lock with books kept in debug builds only, for the one hot slow path that needs it so
  // (the heap's refill by its owner; see front/slow_path.cpp).
#ifdef NDEBUG
  Lock& owner_refill() noexcept {
    return lock_;
  }
#else
  ranked& owner_refill() noexcept {
    return *this;
  }
#endif
  lock_rank rank() const noexcept {
    return rank_;
  }

 private:
  Lock lock_;
  lock_rank rank_;
};

}  // namespace slabpool::detail
