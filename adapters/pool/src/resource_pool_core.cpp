// resource_pool's slow paths: scanning for idle objects, creating under the max_open bound, the
// FIFO queue of waiters, destruction and close. No user hook ever runs with the lock held: the
// lock covers the waiter queue only, and handing an entry to a waiter is an ownership transfer
// (a CAS on the entry's state), not a call.

#include <cstdlib>
#include <cstring>
#include <new>
#include <random>

#include "front/front.hpp"
#include "slabpool/resource_pool_core.hpp"
#include "slabpool/slabpool.h"

namespace slabpool::detail {
namespace {

constexpr std::uint32_t kChunkEntries = 64;  // growth step of an unbounded pool
std::atomic<std::uint64_t> g_serial{1};

rp_chunk* new_chunk(std::uint32_t count) {
  const std::size_t bytes = sizeof(rp_chunk) + sizeof(rp_entry) * count + alignof(rp_entry);
  void* mem = sp_aligned_alloc(alignof(rp_entry), bytes);
  if (mem == nullptr) throw std::bad_alloc();
  auto* c = ::new (mem) rp_chunk();
  c->count = count;
  auto raw = reinterpret_cast<std::uintptr_t>(c + 1);
  raw = (raw + alignof(rp_entry) - 1) & ~(std::uintptr_t{alignof(rp_entry)} - 1);
  c->entries = reinterpret_cast<rp_entry*>(raw);
  for (std::uint32_t i = 0; i < count; ++i) ::new (&c->entries[i]) rp_entry();
  return c;
}

void free_chunk(rp_chunk* c) noexcept {
  for (std::uint32_t i = 0; i < c->count; ++i) c->entries[i].~rp_entry();
  c->~rp_chunk();
  sp_free(c);
}

void atomic_max(std::atomic<std::uint64_t>& m, std::uint64_t v) noexcept {
  std::uint64_t cur = m.load(std::memory_order_relaxed);
  while (v > cur && !m.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

void fork_prepare(void* p) {
  static_cast<ranked<std::mutex>*>(p)->raw().lock();
}
void fork_parent(void* p) {
  static_cast<ranked<std::mutex>*>(p)->raw().unlock();
}

}  // namespace

// The child handler needs the core, not only its lock.
struct rp_fork_access {
  static void child(void* p) { static_cast<rp_core*>(p)->fork_child(); }
  static void prepare(void* p) { fork_prepare(&static_cast<rp_core*>(p)->lock_); }
  static void parent(void* p) { fork_parent(&static_cast<rp_core*>(p)->lock_); }
};

std::int64_t rp_coarse_now() noexcept {
  return static_cast<std::int64_t>(monotonic_coarse_ns());
}

rp_clock_cache rp_clock;
namespace {
std::atomic<std::int64_t (*)() noexcept> g_clock_source{nullptr};
}

std::int64_t rp_clock_refresh() noexcept {
  std::int64_t (*source)() noexcept = g_clock_source.load(std::memory_order_relaxed);
  const std::int64_t t = (source != nullptr ? source() : rp_coarse_now()) & ~std::int64_t{1};
  // Only forward: two refreshing threads may finish in either order.
  std::int64_t cached = rp_clock.ns.load(std::memory_order_relaxed);
  while (t > cached && !rp_clock.ns.compare_exchange_weak(cached, t, std::memory_order_relaxed)) {
  }
  return t;
}

void rp_clock_set_source(std::int64_t (*source)() noexcept) noexcept {
  g_clock_source.store(source, std::memory_order_relaxed);
}

void rp_clock_set(std::int64_t ns) noexcept {
  rp_clock.ns.store(ns & ~std::int64_t{1}, std::memory_order_relaxed);
}

rp_core::rp_core(const rp_config& c, const rp_vtable& vt, void* owner)
    : serial_(g_serial.fetch_add(1, std::memory_order_relaxed)),
      clock_(c.clock),
      max_open_(c.max_open),
      max_open_or_max_(c.max_open == 0 ? SIZE_MAX : c.max_open),
      max_idle_(c.max_idle),
      validate_after_(vt.validate != nullptr ? c.validate_after : 0),
      leak_threshold_(c.leak_threshold),
      time_on_acquire_(c.max_lifetime != 0 || validate_after_ != 0),
      time_on_release_(c.max_lifetime != 0 || c.idle_timeout != 0 || validate_after_ != 0 ||
                       (vt.keepalive != nullptr && c.keepalive != 0)),
      stamp_checked_(validate_after_ != 0 || (vt.keepalive != nullptr && c.keepalive != 0)),
      count_idle_(max_idle_ < max_open_or_max_),
      on_borrow_(!time_on_acquire_ && leak_threshold_ == 0                           ? kRpPlain
                 : clock_ == nullptr && validate_after_ == 0 && leak_threshold_ == 0 ? kRpExpiry
                                                                                     : kRpChecked),
      on_return_(!time_on_release_                      ? kRpPlain
                 : clock_ == nullptr && !stamp_checked_ ? kRpExpiry
                                                        : kRpChecked),
      vt_(vt),
      owner_(owner),
      min_idle_(c.min_idle),
      idle_timeout_(c.idle_timeout),
      max_lifetime_(c.max_lifetime),
      keepalive_(vt.keepalive != nullptr ? c.keepalive : 0),
      jitter_(c.lifetime_jitter) {
  std::strncpy(name_, c.name != nullptr ? c.name : "", sizeof(name_) - 1);
  name_[sizeof(name_) - 1] = '\0';
  // A bounded pool gets all its entries at once: it never grows, never allocates again.
  first_ =
      new_chunk(max_open_ != 0 && max_open_ <= (1u << 20) ? static_cast<std::uint32_t>(max_open_)
                                                          : kChunkEntries);
  fork_ = fork_participant{lock_rank::resource_pool, rp_fork_access::prepare,
                           rp_fork_access::parent, rp_fork_access::child, this};
  fork_participant_add(&fork_);
  rp_registry_add(this);
}

rp_core::~rp_core() {
  rp_registry_remove(this);
  close();
  fork_participant_remove(&fork_);
  for (rp_chunk* c = first_; c != nullptr;) {
    rp_chunk* next = c->next.load(std::memory_order_relaxed);
    free_chunk(c);
    c = next;
  }
}

std::int64_t rp_core::precise_now() const noexcept {
  if (clock_ != nullptr) return clock_().count();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::int64_t rp_core::jittered_lifetime() noexcept {
  if (max_lifetime_ == 0) return INT64_MAX / 2;
  // HikariCP's idea: take up to `jitter` of the lifetime off at random, so objects created in
  // one burst do not all expire (and reconnect) in the same instant.
  thread_local std::minstd_rand rng(static_cast<unsigned>(
      reinterpret_cast<std::uintptr_t>(&rng) ^ static_cast<std::uintptr_t>(rp_coarse_now())));
  const double cut = jitter_ * (static_cast<double>(rng() - rng.min()) / (rng.max() - rng.min()));
  return max_lifetime_ - static_cast<std::int64_t>(cut * static_cast<double>(max_lifetime_));
}

bool rp_core::reserve_capacity() noexcept {
  std::size_t n = open_.load(std::memory_order_relaxed);
  do {
    if (n >= max_open_or_max_) return false;
  } while (!open_.compare_exchange_weak(n, n + 1, std::memory_order_seq_cst));
  return true;
}

void rp_core::unreserve_capacity() noexcept {
  open_.fetch_sub(1, std::memory_order_seq_cst);
  // Capacity is one of the two things a waiter waits for: pass it on (Dekker pair with the
  // waiter's re-check under the lock).
  if (must_serve(flags_.load(std::memory_order_seq_cst))) serve_waiters();
}

rp_entry* rp_core::claim_any_idle() noexcept {
  for (rp_chunk* c = first_; c != nullptr; c = c->next.load(std::memory_order_acquire)) {
    for (std::uint32_t i = 0; i < c->count; ++i) {
      rp_entry* e = &c->entries[i];
      if (e->state.load(std::memory_order_relaxed) == kRpIdle && claim_idle(e, kRpInUse)) return e;
    }
  }
  return nullptr;
}

bool rp_core::any_available() const noexcept {
  if (open_.load(std::memory_order_seq_cst) < max_open_or_max_) return true;
  bool idle = false;
  for (rp_chunk* c = first_; c != nullptr && !idle; c = c->next.load(std::memory_order_acquire))
    for (std::uint32_t i = 0; i < c->count && !idle; ++i)
      idle = c->entries[i].state.load(std::memory_order_seq_cst) == kRpIdle;
  return idle;
}

rp_grant rp_core::take_available() noexcept {
  rp_grant g;
  g.entry = claim_any_idle();
  g.create = g.entry == nullptr && reserve_capacity();
  return g;
}

rp_entry* rp_core::claim_free_slot() {
  for (;;) {
    rp_chunk* last = nullptr;
    for (rp_chunk* c = first_; c != nullptr; c = c->next.load(std::memory_order_acquire)) {
      last = c;
      for (std::uint32_t i = 0; i < c->count; ++i) {
        rp_entry* e = &c->entries[i];
        std::uint32_t expected = kRpFree;
        if (e->state.load(std::memory_order_relaxed) == kRpFree &&
            e->state.compare_exchange_strong(expected, kRpCreating, std::memory_order_acquire))
          return e;
      }
    }
    // Unbounded pools grow here; bounded ones only after a fork abandoned entries. The chunk is
    // allocated with no lock held and linked with a CAS (a loser frees its own).
    rp_chunk* grown = new_chunk(kChunkEntries);
    rp_chunk* expected = nullptr;
    if (!last->next.compare_exchange_strong(expected, grown, std::memory_order_acq_rel))
      free_chunk(grown);
  }
}

rp_entry* rp_core::create_entry(rp_state final_state) {
  rp_entry* e;
  void* object;
  try {
    e = claim_free_slot();
  } catch (...) {
    create_failures_.fetch_add(1, std::memory_order_relaxed);
    unreserve_capacity();
    throw;
  }
  try {
    object = vt_.create(owner_);  // the factory: slow, may throw; no lock held
  } catch (...) {
    e->state.store(kRpFree, std::memory_order_release);
    create_failures_.fetch_add(1, std::memory_order_relaxed);
    unreserve_capacity();
    throw;
  }
  if (object == nullptr) {
    e->state.store(kRpFree, std::memory_order_release);
    create_failures_.fetch_add(1, std::memory_order_relaxed);
    unreserve_capacity();
    throw resource_pool_error(resource_errc::create_failed,
                              "slabpool::resource_pool: the factory returned no object");
  }
  const std::int64_t t = now();
  e->object = object;
  e->expires_at.store(t + jittered_lifetime(), std::memory_order_relaxed);
  e->idle_since.store(clock_ != nullptr ? t : rp_stamp_exact(t), std::memory_order_relaxed);
  e->checked_at.store(t, std::memory_order_relaxed);
  created_.fetch_add(1, std::memory_order_relaxed);
  if (final_state == kRpIdle)
    make_idle(e);
  else
    e->state.store(final_state, std::memory_order_release);
  return e;
}

rp_entry* rp_core::make_fresh(rp_entry* e) noexcept {
  if (!time_on_acquire_) return e;  // no lifetime, no validation: always fresh
  // A borrow that missed its hint lands here on two threads: the cached clock, like the hint.
  const std::int64_t t = cached_now_quiet();
  if (t >= e->expires_at.load(std::memory_order_relaxed)) {
    destroy(e, rp_reason::lifetime);
    return nullptr;
  }
  if (validate_after_ != 0 &&
      t - e->checked_at.load(std::memory_order_relaxed) >= validate_after_) {
    validations_.fetch_add(1, std::memory_order_relaxed);
    if (!vt_.validate(owner_, e->object)) {
      destroy(e, rp_reason::validation);
      return nullptr;
    }
    e->checked_at.store(now(), std::memory_order_relaxed);  // the hook took time: read again
  }
  return e;
}

rp_entry* rp_core::acquire_checked(const rp_deadline& deadline, bool wait, rp_entry* claimed,
                                   const source_site& where) {
  rp_entry* e = claimed;
  if (e != nullptr && time_on_acquire_ && !fresh(e, cached_now_quiet()))
    e = acquire_slow(deadline, wait, e);
  if (e == nullptr) e = acquire_slow(deadline, wait, nullptr);
  if (e != nullptr && leak_threshold_ != 0) note_lease(e, where);
  return e;
}

void rp_core::release_checked(rp_entry* e) noexcept {
  // A fake clock is read as is; the real one through the cache (see release()).
  const std::int64_t t = cached_now();
  if (t >= e->expires_at.load(std::memory_order_relaxed)) return release_slow(e, false);
  e->idle_since.store(t, std::memory_order_relaxed);
  if (stamp_checked_) e->checked_at.store(t, std::memory_order_relaxed);
  publish_idle(e);
}

rp_entry* rp_core::acquire_slow(const rp_deadline& deadline, bool wait, rp_entry* claimed) {
  if (claimed != nullptr && (claimed = make_fresh(claimed)) != nullptr) return claimed;
  std::chrono::steady_clock::time_point until{};
  bool resolved = false;
  for (;;) {
    const std::uint32_t f = flags_.load(std::memory_order_seq_cst);
    if (f & kClosed)
      throw resource_pool_closed(resource_errc::closed, "slabpool::resource_pool: closed");
    rp_grant g;
    // Barge (take what is there, even past queued waiters) unless one of them starves; then
    // join the queue behind them (FIFO).
    if ((f & kStarving) == 0) g = take_available();
    if (g.entry == nullptr && !g.create) {
      if (!wait) return nullptr;
      if (!resolved) {
        until = deadline.resolve();
        resolved = true;
        if (clock_ == nullptr) rp_clock_refresh();  // about to sleep: 10 ns is nothing here
      }
      g = wait_for_grant(until);
      if (g.closed)
        throw resource_pool_closed(resource_errc::closed, "slabpool::resource_pool: closed");
    }
    if (g.create) return create_entry(kRpInUse);
    if (rp_entry* e = make_fresh(g.entry)) return e;
    // It failed validation or had expired: it is destroyed; try again (same deadline).
  }
}

void rp_core::enqueue(rp_waiter* w, bool front) noexcept {
  if (front) {
    w->next = head_;
    head_ = w;
    if (tail_ == nullptr) tail_ = w;
  } else {
    w->next = nullptr;
    if (tail_ != nullptr)
      tail_->next = w;
    else
      head_ = w;
    tail_ = w;
  }
  flags_.fetch_add(1, std::memory_order_seq_cst);
}

rp_grant rp_core::wait_for_grant(std::chrono::steady_clock::time_point deadline) {
  rp_waiter node;
  node.since = precise_now();
  std::unique_lock guard(lock_);
  // close() sets the flag before it empties the queue: a waiter arriving after that sweep sees it.
  if (flags_.load(std::memory_order_seq_cst) & kClosed) {
    rp_grant g;
    g.closed = true;
    return g;
  }
  enqueue(&node, false);
  bool timed_out = false;
  for (;;) {
    serve_waiters_locked();  // the re-check: something may have become free meanwhile
    while (!node.done) {
      // Wait on the bare mutex: the rank books stay "held", which is what this thread is doing.
      std::unique_lock raw(lock_.raw(), std::adopt_lock);
      bool expired = false;
      if (deadline == std::chrono::steady_clock::time_point::max())
        node.cv.wait(raw);
      else
        expired = node.cv.wait_until(raw, deadline) == std::cv_status::timeout;
      raw.release();
      if (expired && !node.done) {
        // Unlink ourselves; nothing was granted to us.
        rp_waiter** link = &head_;
        rp_waiter* prev = nullptr;
        while (*link != &node) {
          prev = *link;
          link = &(*link)->next;
        }
        *link = node.next;
        if (tail_ == &node) tail_ = prev;
        flags_.fetch_sub(1, std::memory_order_seq_cst);
        // Nobody left to starve: let newcomers barge again.
        if (head_ == nullptr) flags_.fetch_and(~kStarving, std::memory_order_seq_cst);
        timed_out = true;
        break;
      }
    }
    if (timed_out || !node.grant.retry) break;
    // Woken in normal mode to compete for a returned object: try like a newcomer, unlocked.
    guard.unlock();
    rp_grant g;
    if ((flags_.load(std::memory_order_seq_cst) & kClosed) == 0) g = take_available();
    guard.lock();
    // Full barrier, then the scan in serve_waiters_locked(): a release that saw kWoken set and
    // skipped the wake-up is seen here (Dekker pair).
    flags_.fetch_and(~kWoken, std::memory_order_seq_cst);
    if (g.entry != nullptr || g.create || (flags_.load(std::memory_order_seq_cst) & kClosed)) {
      node.grant = g;
      node.grant.closed = g.entry == nullptr && !g.create;
      serve_waiters_locked();  // more may have come back while we were the woken one
      break;
    }
    // A barging thread was faster: back to the front of the queue, keeping our place. Having
    // waited too long, we stop the barging (Go's sync.Mutex starvation mode).
    node.done = false;
    node.grant = rp_grant{};
    enqueue(&node, true);
    if (precise_now() - node.since >= kStarveNs)
      flags_.fetch_or(kStarving, std::memory_order_seq_cst);
  }
  guard.unlock();
  count_wait(precise_now() - node.since);
  if (timed_out) {
    timeouts_.fetch_add(1, std::memory_order_relaxed);
    throw resource_pool_timeout(resource_errc::timeout,
                                "slabpool::resource_pool: acquire timed out");
  }
  return node.grant;
}

void rp_core::count_wait(std::int64_t ns) noexcept {
  const auto v = static_cast<std::uint64_t>(ns < 0 ? 0 : ns);
  waits_.fetch_add(1, std::memory_order_relaxed);
  wait_ns_.fetch_add(v, std::memory_order_relaxed);
  atomic_max(max_wait_ns_, v);
}

void rp_core::serve_waiters() noexcept {
  std::lock_guard guard(lock_);
  serve_waiters_locked();
}

void rp_core::serve_waiters_locked() noexcept {
  std::int64_t t = 0;
  while (head_ != nullptr) {
    const std::uint32_t f = flags_.load(std::memory_order_seq_cst);
    if ((f & kStarving) == 0) {
      if (f & kWoken) return;  // the woken waiter runs serve_waiters_locked() again after it
      if (t == 0) t = precise_now();
      if (t - head_->since < kStarveNs) {
        // Normal mode: wake the head to compete (it may lose to a barging thread).
        if (!any_available()) return;
        rp_waiter* w = head_;
        head_ = w->next;
        if (head_ == nullptr) tail_ = nullptr;
        flags_.fetch_add(kWoken - 1, std::memory_order_seq_cst);  // one fewer queued, one woken
        w->grant = rp_grant{};
        w->grant.retry = true;
        w->done = true;
        w->cv.notify_one();  // under the lock: the node lives on its owner's stack
        return;
      }
      flags_.fetch_or(kStarving, std::memory_order_seq_cst);
    }
    // Starvation mode: hand what is free to the head, in order.
    rp_grant g = take_available();
    if (g.entry == nullptr && !g.create) return;
    rp_waiter* w = head_;
    head_ = w->next;
    if (head_ == nullptr) tail_ = nullptr;
    flags_.fetch_sub(1, std::memory_order_seq_cst);
    if (t == 0) t = precise_now();
    // Back to normal mode once the queue is short of starving waiters (Go's rule).
    if (head_ == nullptr || t - w->since < kStarveNs)
      flags_.fetch_and(~kStarving, std::memory_order_seq_cst);
    w->grant = g;
    w->done = true;
    w->cv.notify_one();
  }
}

void rp_core::make_idle(rp_entry* e) noexcept {
  if (count_idle_) idle_count_.fetch_add(1, std::memory_order_relaxed);
  e->state.exchange(kRpIdle, std::memory_order_seq_cst);
  const std::uint32_t f = flags_.load(std::memory_order_seq_cst);
  if (f != 0) after_idle(e, f);
}

void rp_core::after_idle(rp_entry* e, std::uint32_t f) noexcept {
  if (f & kClosed) {
    // close() may have scanned before this entry became idle: one of us destroys it.
    if (claim_idle(e, kRpReserved)) destroy(e, rp_reason::closed);
    return;
  }
  // A woken waiter in normal mode will look again after its attempt: no need for the lock.
  if (must_serve(f)) serve_waiters();
}

void rp_core::release_slow(rp_entry* e, bool broken) noexcept {
  destroy(e, broken ? rp_reason::broken : rp_reason::lifetime);
}

void rp_core::destroy_surplus(rp_entry* e) noexcept {
  idle_count_.fetch_sub(1, std::memory_order_relaxed);
  destroy(e, rp_reason::surplus);
}

void rp_core::destroy(rp_entry* e, rp_reason reason) noexcept {
  void* object = e->object;
  e->object = nullptr;
  vt_.destroy(owner_, object);  // user hook and ~T, no lock held
  destroyed_[static_cast<unsigned>(reason)].fetch_add(1, std::memory_order_relaxed);
  e->state.store(kRpFree, std::memory_order_release);
  unreserve_capacity();
}

void rp_core::close() noexcept {
  flags_.fetch_or(kClosed, std::memory_order_seq_cst);
  {
    std::lock_guard guard(lock_);
    while (head_ != nullptr) {
      rp_waiter* w = head_;
      head_ = w->next;
      flags_.fetch_sub(1, std::memory_order_seq_cst);
      w->grant = rp_grant{};
      w->grant.closed = true;
      w->done = true;
      w->cv.notify_one();
    }
    tail_ = nullptr;
  }
  for_each_entry([this](rp_entry* e) {
    if (e->state.load(std::memory_order_relaxed) == kRpIdle && claim_idle(e, kRpReserved))
      destroy(e, rp_reason::closed);
  });
}

std::size_t rp_core::leased() const noexcept {
  std::size_t n = 0;
  for_each_entry([&n](rp_entry* e) {
    const std::uint32_t s = e->state.load(std::memory_order_relaxed);
    if (s == kRpInUse || s == kRpCreating) ++n;
  });
  return n;
}

}  // namespace slabpool::detail
