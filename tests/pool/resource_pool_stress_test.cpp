// resource_pool under load and across fork: N threads x M acquires with max_open K never have
// more than K objects alive, never hand one object to two threads, lose no lease, and destroy
// every object exactly once; a fork child starts with an empty pool and never touches (nor
// destroys) the parent's objects.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <slabpool/resource_pool.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "common/sanitized.hpp"
#include "resource_pool_test_util.hpp"

namespace {

using namespace rp_test;
using pool_t = slabpool::resource_pool<conn>;

std::atomic<long> g_alive_max{0};

conn counted_conn() {
  conn c;
  const long alive = conn::alive();
  long m = g_alive_max.load();
  while (alive > m && !g_alive_max.compare_exchange_weak(m, alive)) {
  }
  return c;
}

void stress(std::size_t max_open, int threads, int per_thread) {
  conn::zero();
  g_alive_max = 0;
  std::atomic<long> leases{0}, discards{0}, overlaps{0};
  {
    slabpool::resource_pool_options<conn> o;  // real clock
    o.max_open = max_open;
    o.validate = [](conn& c) { return c.healthy.load(); };
    o.validate_after = 1ms;
    pool_t pool(counted_conn, o);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < per_thread; ++i) {
          auto l = (i % 7 == 0) ? pool.try_acquire() : pool.acquire(60s);
          if (!l) continue;
          if (l->leased.exchange(true)) ++overlaps;
          ++leases;
          if ((i + t) % 97 == 0) {
            l->leased = false;
            l.discard();
            ++discards;
            continue;
          }
          if ((i + t) % 89 == 0) l->healthy = false;  // fails validation after a while
          l->leased = false;
        }
      });
    }
    for (auto& th : ts) th.join();
    const auto st = pool.stats();
    EXPECT_EQ(st.in_use, 0u);
    EXPECT_EQ(st.waiting, 0u);
    EXPECT_LE(st.open, max_open);
    EXPECT_EQ(st.timeouts, 0u);
    EXPECT_EQ(st.destroyed_broken, static_cast<std::uint64_t>(discards.load()));
    EXPECT_EQ(st.created - st.destroyed_broken - st.destroyed_validation - st.destroyed_lifetime,
              st.idle);
  }
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_LE(g_alive_max.load(), static_cast<long>(max_open));
  EXPECT_GT(leases.load(), 0);
  EXPECT_EQ(conn::alive(), 0);  // every object destroyed exactly once (made == gone)
}

int scale() {
  return sp_build::kSanitized ? 1 : 4;
}

TEST(resource_pool_stress, fewer_objects_than_threads) {
  stress(3, 8, 1500 * scale());
}
TEST(resource_pool_stress, more_objects_than_threads) {
  stress(16, 4, 3000 * scale());
}
TEST(resource_pool_stress, one_object_many_threads) {
  stress(1, 6, 500 * scale());
}

// Oversubscribed on purpose (far more threads than objects and cores): barging must not starve
// anyone. Every thread gets every one of its leases with no timeout, and the waits counted match
// the acquires that had to queue.
TEST(resource_pool_stress, no_waiter_starves_when_oversubscribed) {
  conn::zero();
  constexpr int kThreads = 16;
  const int per_thread = 400 * scale();
  std::vector<int> done(kThreads, 0);
  std::atomic<int> overlaps{0};
  {
    slabpool::resource_pool_options<conn> o;
    o.max_open = 2;
    pool_t pool([] { return conn(); }, o);
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < per_thread; ++i) {
          auto l = pool.acquire(60s);                // a starved thread would time out here
          if (l->leased.exchange(true)) ++overlaps;  // one object, one thread
          l->leased = false;
          ++done[static_cast<std::size_t>(t)];
          if (i % 16 == 0) std::this_thread::yield();
        }
      });
    }
    for (auto& th : ts) th.join();
    const auto st = pool.stats();
    EXPECT_EQ(st.timeouts, 0u);
    EXPECT_EQ(st.waiting, 0u);
    EXPECT_LE(st.open, 2u);
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(done[static_cast<std::size_t>(t)], per_thread);
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(conn::alive(), 0);
}

TEST(resource_pool_fork, the_child_starts_empty_and_never_touches_the_parents_objects) {
  conn::zero();
  std::atomic<int> destroy_hooks{0};
  auto o = fake_clock_options();
  o.max_open = 3;
  o.destroy = [&destroy_hooks](conn&) { ++destroy_hooks; };
  pool_t pool([] { return conn(); }, o);
  { auto a = pool.acquire(), b = pool.acquire(), c = pool.acquire(); }
  auto held = pool.acquire();  // one leased across the fork, two idle
  const long parent_made = conn::made.load();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int bad = 0;
    const auto st = pool.stats();
    if (st.open != 0 || st.idle != 0 || st.in_use != 0) bad |= 1;
    if (st.abandoned_at_fork != 3) bad |= 2;
    {
      auto c = pool.acquire();  // made in the child
      if (conn::made.load() != parent_made + 1) bad |= 4;
      if (c->id == held->id) bad |= 8;
    }
    held.reset();  // a lease from before the fork: ignored, not pooled, not destroyed
    if (pool.stats().idle != 1) bad |= 16;
    {
      auto x = pool.acquire(), y = pool.acquire(), z = pool.acquire();  // full max_open again
      if (!x || !y || !z) bad |= 32;
    }
    if (destroy_hooks.load() != 0) bad |= 64;  // nothing destroyed so far, least of all parent's
    _exit(bad);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // The parent's pool is untouched.
  EXPECT_EQ(pool.stats().idle, 2u);
  EXPECT_EQ(pool.stats().in_use, 1u);
  EXPECT_EQ(destroy_hooks.load(), 0);
  held.reset();
  EXPECT_EQ(pool.stats().idle, 3u);
}

}  // namespace
