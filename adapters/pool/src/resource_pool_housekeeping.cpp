// resource_pool off the request path: idle timeout, max lifetime, keep-alive, min_idle refill and
// leak reports (HikariCP's housekeeper, run by slabpool's trim passes or by housekeep()), plus the
// stats snapshot and what a fork child does with the parent's objects.
#include <cstdint>

#include "slabpool/resource_pool_core.hpp"

namespace slabpool::detail {

void rp_core::note_lease(rp_entry* e, const source_site& where) noexcept {
  // Sequence lock: the housekeeper reads these while the lease is out and must not report a
  // mixture of two leases. Only the entry's owner writes them.
  const std::uint32_t seq = e->lease_seq.load(std::memory_order_relaxed);
  e->lease_seq.store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  e->leased_at.store(now(), std::memory_order_relaxed);
  e->lease_file.store(where.file, std::memory_order_relaxed);
  e->lease_function.store(where.function, std::memory_order_relaxed);
  e->lease_line.store(where.line, std::memory_order_relaxed);
  e->lease_seq.store(seq + 2, std::memory_order_release);
}

void rp_core::report_leak(rp_entry* e, std::int64_t t) noexcept {
  const std::uint32_t seq = e->lease_seq.load(std::memory_order_acquire);
  if ((seq & 1) != 0 || seq == 0 || e->reported_seq.load(std::memory_order_relaxed) == seq) return;
  const std::int64_t at = e->leased_at.load(std::memory_order_relaxed);
  resource_leak leak{name_, std::chrono::nanoseconds(t - at),
                     e->lease_file.load(std::memory_order_relaxed),
                     e->lease_function.load(std::memory_order_relaxed),
                     e->lease_line.load(std::memory_order_relaxed)};
  std::atomic_thread_fence(std::memory_order_acquire);
  if (e->lease_seq.load(std::memory_order_relaxed) != seq) return;  // re-leased meanwhile
  if (t - at < leak_threshold_) return;
  if (e->state.load(std::memory_order_acquire) != kRpInUse) return;
  e->reported_seq.store(seq, std::memory_order_relaxed);  // one report per lease
  leaks_.fetch_add(1, std::memory_order_relaxed);
  vt_.report_leak(owner_, leak);  // user hook, no lock held
}

void rp_core::refill(std::size_t idle_now) noexcept {
  while (idle_now < min_idle_ && !closed() && reserve_capacity()) {
    try {
      create_entry(kRpIdle);  // the factory runs here, on the housekeeping thread
    } catch (...) {
      return;  // counted in create_failures; the next pass tries again
    }
    ++idle_now;
  }
}

bool rp_core::housekeep() noexcept {
  // sp_on_trim callbacks may run on two threads at once: one pass per pool at a time.
  if (housekeeping_.exchange(true, std::memory_order_acquire)) return true;
  const std::int64_t t = now();
  std::size_t idle = 0;
  for_each_entry([&idle](rp_entry* e) {
    if (e->state.load(std::memory_order_relaxed) == kRpIdle) ++idle;
  });
  bool pending = false;
  for_each_entry([&](rp_entry* e) {
    const std::uint32_t s = e->state.load(std::memory_order_acquire);
    if (s == kRpInUse && leak_threshold_ != 0) {
      if (t - e->leased_at.load(std::memory_order_relaxed) >= leak_threshold_) report_leak(e, t);
      pending = true;
      return;
    }
    if (s != kRpIdle) return;
    const bool expired = t >= e->expires_at.load(std::memory_order_relaxed);
    std::int64_t since = e->idle_since.load(std::memory_order_relaxed);
    if (clock_ == nullptr && !rp_stamp_is_exact(since)) {
      // Stamped on return from the cached clock: the return happened at or after `since`, up
      // to S later, and before now. Count its idle time from now: late by up to one pass,
      // never early. A failed CAS means it was borrowed meanwhile (not stale either).
      const std::int64_t exact = rp_stamp_exact(since > t ? since : t);
      e->idle_since.compare_exchange_strong(since, exact, std::memory_order_relaxed);
      since = exact;
    }
    // Idle timeout only trims down to min_idle (HikariCP's rule): the rest stay warm.
    const bool stale = idle_timeout_ != 0 && idle > min_idle_ && t - since >= idle_timeout_;
    const bool ping =
        keepalive_ != 0 && t - e->checked_at.load(std::memory_order_relaxed) >= keepalive_;
    if (!expired && !stale && !ping) {
      pending = pending || idle_timeout_ != 0 || max_lifetime_ != 0 || keepalive_ != 0;
      return;
    }
    if (!claim_idle(e, kRpReserved)) return;  // leased meanwhile
    --idle;
    if (expired || stale) {
      destroy(e, expired ? rp_reason::lifetime : rp_reason::idle);
      return;
    }
    keepalives_.fetch_add(1, std::memory_order_relaxed);
    if (!vt_.keepalive(owner_, e->object)) {
      destroy(e, rp_reason::broken);
      return;
    }
    e->checked_at.store(now(), std::memory_order_relaxed);
    make_idle(e);
    ++idle;
    pending = true;
  });
  refill(idle);
  housekeeping_.store(false, std::memory_order_release);
  // While objects are out on the cached clock, later passes keep refreshing it: that is what
  // bounds its staleness (S) when the trimmer is on.
  const bool clock_users =
      clock_ == nullptr && time_on_release_ && open_.load(std::memory_order_relaxed) != 0;
  return pending || clock_users || (min_idle_ != 0 && !closed());
}

resource_pool_stats rp_core::stats() const noexcept {
  resource_pool_stats st;
  st.max_open = max_open_;
  st.open = open_.load(std::memory_order_relaxed);
  for_each_entry([&st](rp_entry* e) {
    const std::uint32_t s = e->state.load(std::memory_order_relaxed);
    st.in_use += s == kRpInUse;
    st.idle += s == kRpIdle;
  });
  const std::uint32_t f = flags_.load(std::memory_order_relaxed);
  st.waiting = (f & kWaiters) + ((f & kWoken) != 0 ? 1 : 0);  // the woken one waits too
  st.waits = waits_.load(std::memory_order_relaxed);
  st.wait_time = std::chrono::nanoseconds(wait_ns_.load(std::memory_order_relaxed));
  st.max_wait = std::chrono::nanoseconds(max_wait_ns_.load(std::memory_order_relaxed));
  st.timeouts = timeouts_.load(std::memory_order_relaxed);
  st.created = created_.load(std::memory_order_relaxed);
  st.create_failures = create_failures_.load(std::memory_order_relaxed);
  auto destroyed = [this](rp_reason r) {
    return destroyed_[static_cast<unsigned>(r)].load(std::memory_order_relaxed);
  };
  st.destroyed_idle = destroyed(rp_reason::idle);
  st.destroyed_lifetime = destroyed(rp_reason::lifetime);
  st.destroyed_broken = destroyed(rp_reason::broken);
  st.destroyed_validation = destroyed(rp_reason::validation);
  st.destroyed_surplus = destroyed(rp_reason::surplus);
  st.destroyed_closed = destroyed(rp_reason::closed);
  st.validations = validations_.load(std::memory_order_relaxed);
  st.keepalives = keepalives_.load(std::memory_order_relaxed);
  st.leaks_reported = leaks_.load(std::memory_order_relaxed);
  st.abandoned_at_fork = abandoned_.load(std::memory_order_relaxed);
  return st;
}

// In the child, right after fork, one thread, with the lock held by fork_prepare. The parent's
// objects (sockets, database handles) are shared with the parent: using them, or closing them
// with a protocol goodbye (QUIT, sqlite3_close), would corrupt the parent's sessions. So they are
// forgotten: no destroy hook, no destructor; their memory and file descriptors stay with the child
// until it execs (descriptors opened with CLOEXEC close then) or exits. Entries that were idle are
// reused; entries leased, being created or reserved are abandoned for good, and a lease from
// before the fork (the forking thread's) is ignored when it is released. Waiters were other
// threads: they do not exist in the child.
void rp_core::fork_child() noexcept {
  std::uint64_t forgotten = 0;
  for_each_entry([&forgotten](rp_entry* e) {
    const std::uint32_t s = e->state.load(std::memory_order_relaxed);
    if (s == kRpFree || s == kRpAbandoned) return;
    ++forgotten;
    e->object = s == kRpIdle ? nullptr : e->object;
    e->state.store(s == kRpIdle ? kRpFree : kRpAbandoned, std::memory_order_relaxed);
  });
  abandoned_.fetch_add(forgotten, std::memory_order_relaxed);
  open_.store(0, std::memory_order_relaxed);
  idle_count_.store(0, std::memory_order_relaxed);
  flags_.store(flags_.load(std::memory_order_relaxed) & kClosed, std::memory_order_relaxed);
  head_ = tail_ = nullptr;
  housekeeping_.store(false, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_relaxed);
  lock_.raw().unlock();
}

}  // namespace slabpool::detail
