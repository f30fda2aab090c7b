// slabpool — resource_pool<T>: a pool of expensive objects (database and TCP connections), with
// what Go's database/sql and HikariCP give their users.
//
//   slabpool::resource_pool<db>::options o;
//   o.max_open = 8;                                   // at most 8 connections alive
//   o.validate = [](db& c) { return c.ping(); };      // on borrow, if idle > validate_after
//   slabpool::resource_pool<db> pool([] { return db::connect("..."); }, o);
//   {
//     auto c = pool.acquire(std::chrono::seconds(2)); // waits FIFO; throws resource_pool_timeout
//     c->query("...");                                // c.discard() if the connection broke
//   }                                                 // back to the pool (or to a waiter)
//
// Bounded (max_open), blocking acquire with a deadline and first-come first-served waiters,
// try_acquire that never waits, idle timeout, max lifetime with jitter, validation on borrow,
// keep-alive, min_idle kept warm, leak reports with the acquiring source location, close(),
// stats (also in slabpool's JSON stats under "sections"."resource_pools"), and fork safety.
//
// Expiry, keep-alive, refill and leak detection run off the request path, in housekeeping passes:
// after every slabpool trim pass (sp_on_trim; the background trimmer runs them every
// SLABPOOL_TRIM_INTERVAL_MS while a pool holds work) or when housekeep() is called. Acquire and
// release only check the one object they touch (expired? needs validation?).
//
// fork: the child's pool starts empty. The parent's objects are forgotten in the child, never
// destroyed there (no destroy hook, no ~T: a goodbye sent on a shared socket would break the
// parent's session); their descriptors stay open in the child until it execs or exits, so open
// them with CLOEXEC. A lease held across fork must not be used in the child; its release there
// is ignored.
//
// Lifetime rule: every lease must be gone before its pool. In checked mode (SLABPOOL_POOL_CHECKS,
// as for object_pool) destroying a pool with leases out aborts with a message; otherwise it is
// undefined behaviour.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

#include "slabpool/pool_checks.hpp"
#include "slabpool/resource_pool_core.hpp"
#include "slabpool/resource_pool_options.hpp"
#include "slabpool/resource_pool_types.hpp"
#include "slabpool/slabpool.h"

namespace slabpool {
namespace detail {
// Writes a leak report to stderr (the default reporter). Never fails.
SLABPOOL_API void rp_print_leak(const resource_leak& leak) noexcept;
// Prints `message` to stderr and aborts.
[[noreturn]] SLABPOOL_API void rp_fatal(const char* message) noexcept;
}  // namespace detail

template <class T>
class resource_pool {
 public:
  using options = resource_pool_options<T>;

  // A leased object: move-only; gives the object back when it goes out of scope.
  class lease {
   public:
    lease() noexcept = default;
    lease(lease&& o) noexcept
        : pool_(std::exchange(o.pool_, nullptr)),
          entry_(std::exchange(o.entry_, nullptr)),
          generation_(o.generation_) {}
    // Gives back the object this lease held, then takes over `o`'s. Never fails.
    lease& operator=(lease&& o) noexcept {
      if (this != &o) {
        reset();
        pool_ = std::exchange(o.pool_, nullptr);
        entry_ = std::exchange(o.entry_, nullptr);
        generation_ = o.generation_;
      }
      return *this;
    }
    // Gives the object back (see reset()).
    ~lease() { reset(); }

    // The object; the lease must not be empty.
    T& operator*() const noexcept { return *static_cast<T*>(entry_->object); }
    T* operator->() const noexcept { return static_cast<T*>(entry_->object); }
    // The object, or nullptr for an empty lease.
    T* get() const noexcept {
      return entry_ != nullptr ? static_cast<T*>(entry_->object) : nullptr;
    }
    explicit operator bool() const noexcept { return entry_ != nullptr; }

    // Gives the object back now: the reset hook runs, then it is idle again or handed to the
    // next waiter (destroyed instead when expired, surplus or the pool is closed). The lease
    // becomes empty. Never fails.
    void reset() noexcept {
      if (entry_ != nullptr) pool_->give_back(std::exchange(entry_, nullptr), generation_, false);
    }
    // The object is broken (a dead socket, a failed protocol step): destroys it now instead of
    // reusing it, freeing its place for a new one. The lease becomes empty. Never fails.
    void discard() noexcept {
      if (entry_ != nullptr) pool_->give_back(std::exchange(entry_, nullptr), generation_, true);
    }

   private:
    friend class resource_pool;
    lease(resource_pool* pool, detail::rp_entry* entry, std::uint32_t generation) noexcept
        : pool_(pool), entry_(entry), generation_(generation) {}
    resource_pool* pool_ = nullptr;
    detail::rp_entry* entry_ = nullptr;
    std::uint32_t generation_ = 0;
  };

  // A pool whose objects come from `factory`, a callable returning T (failure: it throws) or
  // std::optional<T> (failure: std::nullopt, reported as resource_errc::create_failed).
  // Creates nothing yet (min_idle objects come with the first housekeeping pass). Throws
  // std::invalid_argument naming the field when `opts` makes no sense, or std::bad_alloc.
  template <class F>
  requires std::is_invocable_r_v<T, F&> ||
      std::is_invocable_r_v<std::optional<T>, F&> explicit resource_pool(F factory,
                                                                         options opts = {})
      : opts_((detail::check_options(opts), std::move(opts))),
        make_(plain_factory(factory)),
        make_optional_(optional_factory(factory)),
        core_(config(opts_), vtable(), this) {}

  resource_pool(const resource_pool&) = delete;
  resource_pool& operator=(const resource_pool&) = delete;
  // Closes the pool and destroys its idle objects. Leases must be gone (see the lifetime rule).
  ~resource_pool() {
    core_.close();
    if constexpr (SLABPOOL_POOL_CHECKS != 0) {
      if (core_.leased() != 0)
        detail::rp_fatal("slabpool::resource_pool destroyed while leases are out");
    }
  }

  // acquire_until(now + options.acquire_timeout).
  lease acquire(source_site where = source_site::current()) {
    return acquire(opts_.acquire_timeout, where);
  }
  // acquire_until(now + timeout) on the steady clock, where "now" is the moment it first has to
  // wait (an acquire that does not wait never reads the clock).
  lease acquire(std::chrono::nanoseconds timeout, source_site where = source_site::current()) {
    detail::rp_deadline d;
    d.after = timeout;
    d.relative = true;  // the steady clock is read only if the acquire has to wait
    detail::rp_entry* e = core_.acquire(d, true, where);
    return lease(this, e, core_.generation());
  }
  // An object: an idle one, or a new one while fewer than max_open are alive, or else the next
  // one returned, waiting first-come first-served until `deadline`. Idle objects past their
  // lifetime or failing validation are destroyed and replaced on the way. Throws
  // resource_pool_timeout at the deadline, resource_pool_closed when the pool is or gets closed,
  // what the factory throws (or resource_pool_error(create_failed) for an empty optional), or
  // std::bad_alloc. A failed creation gives its place back.
  lease acquire_until(std::chrono::steady_clock::time_point deadline,
                      source_site where = source_site::current()) {
    detail::rp_deadline d;
    d.at = deadline;
    detail::rp_entry* e = core_.acquire(d, true, where);
    return lease(this, e, core_.generation());
  }
  // Like acquire but never waits for another lease: an idle object, or a new one if max_open
  // allows (the factory runs), else an empty lease. Throws resource_pool_closed, what the
  // factory throws, or std::bad_alloc.
  lease try_acquire(source_site where = source_site::current()) {
    detail::rp_entry* e = core_.acquire(detail::rp_deadline{}, false, where);
    return e != nullptr ? lease(this, e, core_.generation()) : lease();
  }

  // Refuses new acquires, wakes waiters with resource_pool_closed, destroys idle objects now and
  // leased ones when they come back. Idempotent; never fails.
  void close() noexcept { core_.close(); }
  // True once close() was called. Never fails.
  bool closed() const noexcept { return core_.closed(); }
  // Runs one housekeeping pass now on the calling thread (expiry, keep-alive, min_idle refill,
  // leak reports); slabpool's trim passes run the same. Returns true while the pool holds
  // something a later pass must look at. Never fails.
  bool housekeep() noexcept { return core_.housekeep(); }
  // A snapshot of the counters. Never fails.
  resource_pool_stats stats() const noexcept { return core_.stats(); }
  // The settings the pool was made with. Never fails.
  const options& settings() const noexcept { return opts_; }

 private:
  // Exactly one of the two takes the factory: T-returning ones go to make_ (no extra move).
  template <class F>
  static std::function<T()> plain_factory(F& f) {
    if constexpr (std::is_invocable_r_v<T, F&>)
      return std::function<T()>(std::move(f));
    else
      return {};
  }
  template <class F>
  static std::function<std::optional<T>()> optional_factory(F& f) {
    if constexpr (std::is_invocable_r_v<T, F&>)
      return {};
    else
      return std::function<std::optional<T>()>(std::move(f));
  }
  static std::int64_t ns(const std::optional<std::chrono::nanoseconds>& d) noexcept {
    return d ? d->count() : 0;
  }
  static detail::rp_config config(const options& o) noexcept {
    return detail::rp_config{o.max_open,
                             o.max_idle,
                             o.min_idle,
                             ns(o.idle_timeout),
                             ns(o.max_lifetime),
                             o.validate_after.count(),
                             ns(o.keepalive_interval),
                             ns(o.leak_threshold),
                             o.lifetime_jitter,
                             o.clock,
                             o.name.c_str()};
  }
  detail::rp_vtable vtable() const noexcept {
    return detail::rp_vtable{&create, &destroy, opts_.validate ? &validate : nullptr,
                             opts_.keepalive || opts_.validate ? &keepalive : nullptr,
                             &report_leak};
  }

  static void* allocate() {
    void* p = alignof(T) <= 16 ? sp_malloc(sizeof(T)) : sp_aligned_alloc(alignof(T), sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  static void* create(void* self) {
    auto* pool = static_cast<resource_pool*>(self);
    void* mem = allocate();
    try {
      if (pool->make_) return ::new (mem) T(pool->make_());
      std::optional<T> made = pool->make_optional_();
      if (made) return ::new (mem) T(std::move(*made));
    } catch (...) {
      sp_free(mem);
      throw;
    }
    sp_free(mem);
    return nullptr;
  }
  static void destroy(void* self, void* object) noexcept {
    auto* pool = static_cast<resource_pool*>(self);
    T* t = static_cast<T*>(object);
    if (pool->opts_.destroy) {
      try {
        pool->opts_.destroy(*t);
      } catch (...) {  // a goodbye that fails changes nothing: the object goes anyway
      }
    }
    t->~T();
    sp_free(object);
  }
  static bool validate(void* self, void* object) noexcept {
    try {
      return static_cast<resource_pool*>(self)->opts_.validate(*static_cast<T*>(object));
    } catch (...) {
      return false;
    }
  }
  static bool keepalive(void* self, void* object) noexcept {
    auto* pool = static_cast<resource_pool*>(self);
    try {
      T& t = *static_cast<T*>(object);
      return pool->opts_.keepalive ? pool->opts_.keepalive(t) : pool->opts_.validate(t);
    } catch (...) {
      return false;
    }
  }
  static void report_leak(void* self, const resource_leak& leak) noexcept {
    auto* pool = static_cast<resource_pool*>(self);
    if (!pool->opts_.leak_reporter) return detail::rp_print_leak(leak);
    try {
      pool->opts_.leak_reporter(leak);
    } catch (...) {
    }
  }

  void give_back(detail::rp_entry* e, std::uint32_t generation, bool broken) noexcept {
    if (generation != core_.generation()) [[unlikely]]
      return;  // leased before a fork: the child forgot that object (see the header comment)
    if (!broken && opts_.reset) {
      try {
        opts_.reset(*static_cast<T*>(e->object));
      } catch (...) {
        broken = true;
      }
    }
    core_.release(e, broken);
  }

  options opts_;
  std::function<T()> make_;
  std::function<std::optional<T>()> make_optional_;
  detail::rp_core core_;  // last: destroyed first, while the hooks above still exist
};

}  // namespace slabpool
