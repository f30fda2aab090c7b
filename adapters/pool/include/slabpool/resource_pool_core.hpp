// slabpool — the type-erased machinery under resource_pool<T> (not a public API).
//
// Every object lives in an entry whose atomic state says who owns it: free (no object),
// creating, idle, in use (leased), reserved (housekeeping or close is working on it) or abandoned
// (a fork child forgot it). Ownership changes by compare-and-swap, so most acquires and releases
// take no lock: like HikariCP's ConcurrentBag, a thread first tries the entry it returned last
// (a thread-local hint), then scans every entry for an idle one. The lock (rank resource_pool)
// only guards the FIFO queue of waiters.
//
// Service under contention follows Go's sync.Mutex: in normal mode a thread that finds an idle
// object takes it even while others wait (barging: no context switch per hand-off), and a return
// wakes the head waiter to compete for it, one woken waiter at a time (kWoken). A woken waiter
// that loses goes back to the front of the queue. Once the head has waited kStarveNs the pool
// switches to starvation mode: nobody barges, and every object or unit of capacity that frees up
// is handed to the head of the queue under the lock (database/sql's putConn), in FIFO order. It
// switches back when a served waiter had waited less than kStarveNs, or was the last one.
//
// The Dekker pair that keeps a waiter from sleeping next to an idle object: a releaser publishes
// `idle` with a full barrier, then reads `flags_`; a waiter bumps `flags_` (or a woken waiter
// clears kWoken) under the lock with a full barrier, then scans for idle entries. At least one of
// them sees the other.
//
// Time: the clock is read only for the features that need it (lifetime, idle timeout,
// validation, keep-alive, leak reports); acquire's deadline is computed only when it has to
// wait. Borrow and return read the cached clock (resource_pool_clock.hpp), slow paths the real
// one; a fake clock in the options is always read directly.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "slabpool/detail/locks.hpp"
#include "slabpool/export.h"
#include "slabpool/resource_pool_clock.hpp"
#include "slabpool/resource_pool_types.hpp"

namespace slabpool::detail {

enum rp_state : std::uint32_t {
  kRpFree,
  kRpCreating,
  kRpIdle,
  kRpInUse,
  kRpReserved,
  kRpAbandoned
};
enum class rp_reason : unsigned { idle, lifetime, broken, validation, surplus, closed, count_ };

// One object slot. Fields other than `state` are written only by the entry's current owner; the
// atomics among them are also read by the housekeeper without owning the entry.
struct alignas(64) rp_entry {
  std::atomic<std::uint32_t> state{kRpFree};
  void* object = nullptr;                   // the T, valid while idle, in use or reserved
  std::atomic<std::int64_t> expires_at{0};  // clock ns: creation + jittered max_lifetime
  std::atomic<std::int64_t> idle_since{0};  // last returned (idle timeout; see rp_stamp_exact)
  std::atomic<std::int64_t> checked_at{0};  // last known good: returned, validated, kept alive
  // Where and when it was leased (leak detection), under a sequence lock: odd = being written.
  std::atomic<std::uint32_t> lease_seq{0};
  std::atomic<std::uint32_t> reported_seq{0};  // lease_seq of the last leak report
  std::atomic<std::int64_t> leased_at{0};
  std::atomic<const char*> lease_file{nullptr};
  std::atomic<const char*> lease_function{nullptr};
  std::atomic<std::uint32_t> lease_line{0};
};

// Entries come in chunks that live as long as the pool (lock-free scans never see freed memory).
struct rp_chunk {
  std::atomic<rp_chunk*> next{nullptr};
  std::uint32_t count = 0;
  rp_entry* entries = nullptr;
};

// What the typed pool supplies. `create` returns a new object or nullptr when the factory
// reported failure, and throws what the factory throws. The others never throw.
struct rp_vtable {
  void* (*create)(void* owner);
  void (*destroy)(void* owner, void* object) noexcept;
  bool (*validate)(void* owner, void* object) noexcept;   // nullptr: no validation on borrow
  bool (*keepalive)(void* owner, void* object) noexcept;  // nullptr: no keep-alive
  void (*report_leak)(void* owner, const resource_leak& leak) noexcept;
};

// Checked settings in nanoseconds; 0 = feature off.
struct rp_config {
  std::size_t max_open, max_idle, min_idle;
  std::int64_t idle_timeout, max_lifetime, validate_after, keepalive, leak_threshold;
  double lifetime_jitter;
  std::chrono::nanoseconds (*clock)();  // nullptr: CLOCK_MONOTONIC_COARSE
  const char* name;
};

// The thread's last returned entry per pool (a hint: it is claimed by CAS like any other).
struct rp_hint {
  std::uint64_t pool;
  rp_entry* entry;
};
inline constexpr unsigned kRpHints = 4;
inline constinit thread_local rp_hint t_rp_hints[kRpHints] = {};

// Result of waiting: an entry handed over, or the right to create one, or the pool closed, or
// (normal mode) a wake-up to compete for what was returned.
struct rp_grant {
  rp_entry* entry = nullptr;
  bool create = false;
  bool closed = false;
  bool retry = false;
};
struct rp_waiter {
  std::condition_variable cv;
  rp_waiter* next = nullptr;
  std::int64_t since = 0;  // precise clock when it first queued (starvation threshold)
  rp_grant grant;
  bool done = false;
};

// An acquire's deadline: absolute, or relative to the moment it first has to wait (so the
// uncontended path never reads the steady clock).
struct rp_deadline {
  std::chrono::steady_clock::time_point at{};
  std::chrono::nanoseconds after{};
  bool relative = false;
  std::chrono::steady_clock::time_point resolve() const noexcept {
    if (!relative) return at;
    const auto now = std::chrono::steady_clock::now();
    return after >= std::chrono::steady_clock::time_point::max() - now
               ? std::chrono::steady_clock::time_point::max()
               : now + after;
  }
};

// The coarse monotonic clock in ns (vDSO, no syscall; resolution a few ms).
SLABPOOL_API std::int64_t rp_coarse_now() noexcept;

class SLABPOOL_API rp_core {
 public:
  static constexpr std::uint32_t kClosed = 1u << 31;
  static constexpr std::uint32_t kStarving = 1u << 30;   // strict FIFO hand-off
  static constexpr std::uint32_t kWoken = 1u << 29;      // a woken waiter is competing
  static constexpr std::uint32_t kWaiters = kWoken - 1;  // queued waiters (count)
  // A waiter queued this long (pool clock, else steady clock) switches to starvation mode.
  static constexpr std::int64_t kStarveNs = 1'000'000;

  // Registers the pool (housekeeping, stats, fork). Throws std::bad_alloc.
  rp_core(const rp_config& config, const rp_vtable& vtable, void* owner);
  rp_core(const rp_core&) = delete;
  rp_core& operator=(const rp_core&) = delete;
  // Unregisters and closes; entries still leased are the caller's error (see shutdown()).
  ~rp_core();

  // The real clock (refreshing the cache), or the pool's fake clock.
  std::int64_t now() const noexcept {
    return clock_ != nullptr ? clock_().count() : rp_clock_refresh();
  }
  // The cached clock (up to S behind), or the pool's fake clock: for return (which counts
  // toward the thread's periodic real read) and borrow (which does not: one count per pair).
  std::int64_t cached_now() const noexcept {
    return clock_ != nullptr ? clock_().count() : rp_cached_now();
  }
  std::int64_t cached_now_quiet() const noexcept {
    return clock_ != nullptr ? clock_().count() : rp_cached_now_quiet();
  }

  // An in-use entry; nullptr only when `wait` is false and nothing is available. Throws
  // resource_pool_timeout, resource_pool_closed, resource_pool_error(create_failed), or what the
  // factory throws.
  rp_entry* acquire(const rp_deadline& deadline, bool wait, const source_site& where) {
    // Barging is allowed unless a waiter starves (see the header comment).
    if ((flags_.load(std::memory_order_relaxed) & (kClosed | kStarving)) == 0) [[likely]] {
      const rp_hint h = t_rp_hints[serial_ % kRpHints];
      if (h.pool == serial_ && h.entry != nullptr && claim_idle(h.entry, kRpInUse)) {
        if (on_borrow_ == kRpPlain) return h.entry;
        if (on_borrow_ == kRpExpiry &&
            rp_cached_now_quiet() < h.entry->expires_at.load(std::memory_order_relaxed)) [[likely]]
          return h.entry;
        return acquire_checked(deadline, wait, h.entry, where);
      }
    }
    return acquire_checked(deadline, wait, nullptr, where);
  }

  // Takes back a leased entry: destroyed when `broken`, expired or surplus, else idle (or handed
  // to a waiter). Runs the destroy hook on the calling thread when it destroys. Never fails.
  void release(rp_entry* e, bool broken) noexcept {
    if (broken) [[unlikely]]
      return release_slow(e, true);
    if (on_return_ != kRpPlain) {
      if (on_return_ != kRpExpiry) [[unlikely]]
        return release_checked(e);
      // Cached: the stamp may be up to S early; housekeeping corrects it before it counts
      // (a cached stamp has bit 0 clear), so the idle timeout never closes an object early.
      const std::int64_t t = rp_cached_now();
      if (t >= e->expires_at.load(std::memory_order_relaxed)) [[unlikely]]
        return release_slow(e, false);
      e->idle_since.store(t, std::memory_order_relaxed);
    }
    publish_idle(e);
  }

  // Refuses new acquires, wakes every waiter with `closed`, destroys the idle objects. Leased
  // objects are destroyed as they come back. Idempotent; never fails.
  void close() noexcept;
  bool closed() const noexcept { return (flags_.load(std::memory_order_acquire) & kClosed) != 0; }
  // One housekeeping pass: expiry, keep-alive, min_idle, leak reports. Returns true while the
  // pool holds something a later pass must look at. Skips (returns true) when another thread is
  // running one. Never fails (factory errors while refilling are counted and end the refill).
  bool housekeep() noexcept;
  resource_pool_stats stats() const noexcept;
  // Leases still out (for the destructor's check). Never fails.
  std::size_t leased() const noexcept;
  // The fork generation a lease records: a lease from before a fork is ignored in the child.
  std::uint32_t generation() const noexcept { return generation_.load(std::memory_order_relaxed); }
  const char* name() const noexcept { return name_; }

  // The registry's private interface (resource_pool_registry.cpp).
  rp_core* registry_next = nullptr;
  rp_core* registry_prev = nullptr;
  std::uint32_t registry_refs = 0;  // housekeeping passes holding this pool (registry lock)

 private:
  friend struct rp_fork_access;

  // What borrow and return do besides the state change, fixed at construction so that the
  // defaults (lifetime and idle timeout on the cached clock) take one compare: kRpPlain nothing,
  // kRpExpiry the cached clock against expires_at (return also stamps idle_since), kRpChecked
  // everything else (a fake clock, validation, checked_at stamps, leak reports) out of line.
  enum rp_check : std::uint8_t { kRpPlain, kRpExpiry, kRpChecked };

  bool claim_idle(rp_entry* e, rp_state to) noexcept {
    std::uint32_t expected = kRpIdle;
    if (!e->state.compare_exchange_strong(expected, to, std::memory_order_seq_cst)) return false;
    if (count_idle_) [[unlikely]]
      idle_count_.fetch_sub(1, std::memory_order_relaxed);
    return true;
  }
  // A returned entry becomes idle (or surplus): the end of every return that keeps the object.
  void publish_idle(rp_entry* e) noexcept {
    if (count_idle_) [[unlikely]] {
      if (idle_count_.fetch_add(1, std::memory_order_relaxed) >= max_idle_)
        return destroy_surplus(e);
    }
    e->state.exchange(kRpIdle, std::memory_order_seq_cst);
    t_rp_hints[serial_ % kRpHints] = rp_hint{serial_, e};
    const std::uint32_t f = flags_.load(std::memory_order_seq_cst);
    if (f != 0) [[unlikely]]
      after_idle(e, f);
  }
  // The borrow after the hint: freshness with any clock, the slow path, the leak record.
  rp_entry* acquire_checked(const rp_deadline& deadline, bool wait, rp_entry* claimed,
                            const source_site& where);
  void release_checked(rp_entry* e) noexcept;  // a return that is neither plain nor expiry-only
  bool fresh(rp_entry* e, std::int64_t t) const noexcept {
    return t < e->expires_at.load(std::memory_order_relaxed) &&
           (validate_after_ == 0 ||
            t - e->checked_at.load(std::memory_order_relaxed) < validate_after_);
  }
  void note_lease(rp_entry* e, const source_site& where) noexcept;

  rp_entry* acquire_slow(const rp_deadline& deadline, bool wait, rp_entry* claimed);
  rp_grant take_available() noexcept;  // an idle entry or capacity, as a barging thread would
  bool any_available() const noexcept;
  rp_entry* make_fresh(rp_entry* e) noexcept;  // nullptr when it had to be destroyed
  rp_entry* claim_any_idle() noexcept;
  bool reserve_capacity() noexcept;
  void unreserve_capacity() noexcept;
  rp_entry* create_entry(rp_state final_state);  // capacity already reserved
  rp_entry* claim_free_slot();
  rp_grant wait_for_grant(std::chrono::steady_clock::time_point deadline);  // lock not held
  void serve_waiters() noexcept;                                            // takes the lock
  void serve_waiters_locked() noexcept;                                     // lock held
  void make_idle(rp_entry* e) noexcept;
  void after_idle(rp_entry* e, std::uint32_t flags) noexcept;
  static bool must_serve(std::uint32_t f) noexcept {  // queued waiters nobody is serving yet
    return (f & kWaiters) != 0 && ((f & kStarving) != 0 || (f & kWoken) == 0);
  }
  void enqueue(rp_waiter* w, bool front) noexcept;  // lock held
  void release_slow(rp_entry* e, bool broken) noexcept;
  void destroy_surplus(rp_entry* e) noexcept;
  void destroy(rp_entry* e, rp_reason reason) noexcept;
  void report_leak(rp_entry* e, std::int64_t t) noexcept;
  void refill(std::size_t idle_now) noexcept;
  void count_wait(std::int64_t ns) noexcept;
  std::int64_t precise_now() const noexcept;
  std::int64_t jittered_lifetime() noexcept;
  void fork_child() noexcept;
  template <class F>
  void for_each_entry(F&& f) const noexcept {
    for (rp_chunk* c = first_; c != nullptr; c = c->next.load(std::memory_order_acquire))
      for (std::uint32_t i = 0; i < c->count; ++i) f(&c->entries[i]);
  }

  // Hot, read-mostly.
  std::uint64_t serial_;
  std::chrono::nanoseconds (*clock_)();
  std::size_t max_open_;         // 0 = unbounded
  std::size_t max_open_or_max_;  // max_open_, or SIZE_MAX when unbounded
  std::size_t max_idle_;         // SIZE_MAX = as many as max_open
  std::int64_t validate_after_;  // 0 unless a validate hook is set
  std::int64_t leak_threshold_;
  bool time_on_acquire_;  // lifetime or validation configured: acquire reads the clock
  bool time_on_release_;  // lifetime, idle timeout, validation or keep-alive: release does
  bool stamp_checked_;    // validation or keep-alive: a return refreshes checked_at
  bool count_idle_;       // max_idle_ < max_open_or_max_: idle_count_ is kept
  rp_check on_borrow_;
  rp_check on_return_;
  // Written on slow paths.
  alignas(64) std::atomic<std::uint32_t> flags_{0};  // kWaiters | kWoken | kStarving | kClosed
  std::atomic<std::uint32_t> generation_{0};
  std::atomic<std::size_t> open_{0};        // alive + being created (capacity in use)
  std::atomic<std::size_t> idle_count_{0};  // kept only when max_idle_ < max_open_or_max_
  std::atomic<bool> housekeeping_{false};
  ranked<std::mutex> lock_{lock_rank::resource_pool};  // guards the waiter queue
  rp_waiter* head_ = nullptr;
  rp_waiter* tail_ = nullptr;
  rp_chunk* first_ = nullptr;
  rp_vtable vt_;
  void* owner_;
  std::size_t min_idle_;
  std::int64_t idle_timeout_, max_lifetime_, keepalive_;
  double jitter_;
  char name_[48];
  fork_participant fork_{};
  // Counters (slow paths only).
  std::atomic<std::uint64_t> waits_{0}, wait_ns_{0}, max_wait_ns_{0}, timeouts_{0};
  std::atomic<std::uint64_t> created_{0}, create_failures_{0}, validations_{0}, keepalives_{0};
  std::atomic<std::uint64_t> leaks_{0}, abandoned_{0};
  std::atomic<std::uint64_t> destroyed_[static_cast<unsigned>(rp_reason::count_)] = {};
};

// Registry of live pools: one sp_on_trim hook and one stats section serve them all.
void rp_registry_add(rp_core* pool) noexcept;
// Unlinks the pool, waiting for a housekeeping pass that holds it to finish. Never fails.
void rp_registry_remove(rp_core* pool) noexcept;

}  // namespace slabpool::detail
