// resource_pool housekeeping with a fake clock: idle timeout down to min_idle, max lifetime with
// jitter (on borrow, on return, in housekeeping), keep-alive, min_idle refill, max_idle surplus,
// leak reports, and housekeeping driven by slabpool's trim passes; the cached clock that borrow and
// return read without a fake clock, driven by a test source. No wall time is asserted.
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>
#include <slabpool/resource_pool.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "resource_pool_test_util.hpp"

namespace {

using namespace rp_test;
using pool_t = slabpool::resource_pool<conn>;

conn make_conn() {
  return conn();
}

void fill(pool_t& pool, int n) {
  std::vector<pool_t::lease> leases;
  for (int i = 0; i < n; ++i) leases.push_back(pool.acquire());
}

TEST(resource_pool_expiry, idle_timeout_trims_down_to_min_idle) {
  auto o = fake_clock_options();
  o.idle_timeout = 10s;
  o.min_idle = 1;
  pool_t pool(make_conn, o);
  fill(pool, 4);
  advance(9s);
  pool.housekeep();
  EXPECT_EQ(pool.stats().idle, 4u);
  advance(2s);
  EXPECT_TRUE(pool.housekeep());  // still holds idle objects a later pass may expire
  const auto st = pool.stats();
  EXPECT_EQ(st.destroyed_idle, 3u);
  EXPECT_EQ(st.idle, 1u);
}

TEST(resource_pool_expiry, max_lifetime_is_jittered) {
  auto o = fake_clock_options();
  o.max_lifetime = 100s;
  o.lifetime_jitter = 0.5;  // lifetimes spread over [50 s, 100 s]
  o.idle_timeout.reset();
  o.max_open = 20;
  pool_t pool(make_conn, o);
  fill(pool, 20);
  advance(49s);
  pool.housekeep();
  EXPECT_EQ(pool.stats().destroyed_lifetime, 0u);
  advance(26s);  // 75 s: some expired, not all (all on one side: probability 2 * 2^-20)
  pool.housekeep();
  const auto mid = pool.stats().destroyed_lifetime;
  EXPECT_GT(mid, 0u);
  EXPECT_LT(mid, 20u);
  advance(25s);
  pool.housekeep();
  EXPECT_EQ(pool.stats().destroyed_lifetime, 20u);
  EXPECT_EQ(pool.stats().open, 0u);
}

TEST(resource_pool_expiry, an_expired_object_is_replaced_on_borrow_and_destroyed_on_return) {
  auto o = fake_clock_options();
  o.max_lifetime = 60s;
  o.lifetime_jitter = 0;
  pool_t pool(make_conn, o);
  long id;
  {
    auto a = pool.acquire();
    id = a->id;
  }
  advance(61s);
  {
    auto b = pool.acquire();  // the idle one has expired: destroyed, a new one made
    EXPECT_NE(b->id, id);
    advance(61s);  // and this one expires while leased
  }
  const auto st = pool.stats();
  EXPECT_EQ(st.destroyed_lifetime, 2u);
  EXPECT_EQ(st.open, 0u);
}

TEST(resource_pool_expiry, keepalive_pings_idle_objects_and_drops_dead_ones) {
  auto o = fake_clock_options();
  o.keepalive_interval = 30s;
  o.idle_timeout.reset();
  int pings = 0;
  o.keepalive = [&pings](conn& c) {
    ++pings;
    return c.healthy.load();
  };
  pool_t pool(make_conn, o);
  {
    auto a = pool.acquire();
    auto b = pool.acquire();
    b->healthy = false;
  }
  advance(29s);
  pool.housekeep();
  EXPECT_EQ(pings, 0);
  advance(2s);
  pool.housekeep();
  EXPECT_EQ(pings, 2);
  pool.housekeep();  // just checked: not again before another interval
  EXPECT_EQ(pings, 2);
  const auto st = pool.stats();
  EXPECT_EQ(st.keepalives, 2u);
  EXPECT_EQ(st.destroyed_broken, 1u);
  EXPECT_EQ(st.idle, 1u);
}

TEST(resource_pool_expiry, min_idle_is_kept_warm_by_housekeeping) {
  auto o = fake_clock_options();
  o.max_open = 4;
  o.min_idle = 2;
  pool_t pool(make_conn, o);
  EXPECT_EQ(pool.stats().open, 0u);  // construction creates nothing
  pool.housekeep();
  EXPECT_EQ(pool.stats().idle, 2u);
  auto a = pool.acquire();
  auto b = pool.acquire();
  pool.housekeep();  // both leased: two more idle, reaching max_open
  EXPECT_EQ(pool.stats().open, 4u);
  EXPECT_EQ(pool.stats().idle, 2u);
}

TEST(resource_pool_expiry, returns_beyond_max_idle_are_destroyed_as_surplus) {
  auto o = fake_clock_options();
  o.max_open = 4;
  o.max_idle = 1;
  pool_t pool(make_conn, o);
  fill(pool, 3);
  const auto st = pool.stats();
  EXPECT_EQ(st.idle, 1u);
  EXPECT_EQ(st.destroyed_surplus, 2u);
  EXPECT_EQ(st.open, 1u);
  auto again = pool.acquire();  // the kept one is reused
  EXPECT_EQ(pool.stats().created, 3u);
}

TEST(resource_pool_expiry, a_leak_is_reported_once_with_where_it_was_taken) {
  auto o = fake_clock_options();
  o.leak_threshold = 5s;
  std::vector<slabpool::resource_leak> reports;
  o.leak_reporter = [&reports](const slabpool::resource_leak& l) { reports.push_back(l); };
  o.name = "leaky";
  pool_t pool(make_conn, o);
  const unsigned line = __LINE__ + 1;
  auto held = pool.acquire();
  { auto brief = pool.acquire(); }
  advance(4s);
  pool.housekeep();
  EXPECT_TRUE(reports.empty());
  advance(2s);
  pool.housekeep();
  pool.housekeep();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_STREQ(reports[0].pool_name, "leaky");
  EXPECT_EQ(reports[0].line, line);
  EXPECT_NE(std::string(reports[0].file).find("resource_pool_expiry_test.cpp"), std::string::npos);
  EXPECT_GE(reports[0].held, 6s);
  EXPECT_EQ(pool.stats().leaks_reported, 1u);
  // A new lease of the same object is a new lease: reported again when it is held too long.
  held.reset();
  auto again = pool.acquire();
  advance(6s);
  pool.housekeep();
  EXPECT_EQ(reports.size(), 2u);
}

TEST(resource_pool_expiry, slabpool_trim_passes_run_the_housekeeping) {
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  auto o = fake_clock_options();
  o.idle_timeout = 1s;
  pool_t pool(make_conn, o);
  fill(pool, 3);
  advance(2s);
  sp_trim_decay();  // a trim pass: its callbacks include the resource pools' housekeeping
  EXPECT_EQ(pool.stats().destroyed_idle, 3u);
}

// Without a fake clock, borrow and return read the process-wide cached clock; here the real clock
// behind it is a test source, and only what the rules say refreshes the cache.
class cached_clock : public ::testing::Test {
 protected:
  static inline std::atomic<std::int64_t> source_ns{3'600'000'000'000};  // 1 h
  static std::int64_t source() noexcept { return source_ns.load(); }
  void SetUp() override {
    sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);  // no pass refreshes behind the test's back
    slabpool::detail::rp_clock_set_source(source);
    slabpool::detail::rp_clock_set(0);
    slabpool::detail::t_rp_clock_budget = 1u << 30;  // no per-thread refresh unless asked
  }
  void TearDown() override {
    slabpool::detail::rp_clock_set_source(nullptr);
    slabpool::detail::rp_clock_set(0);
    slabpool::detail::t_rp_clock_budget = 0;
  }
  static void advance_source(std::chrono::nanoseconds d) { source_ns += d.count(); }
  static std::int64_t cached() { return slabpool::detail::rp_clock.ns.load(); }
};

TEST_F(cached_clock, a_return_stamped_from_a_stale_cache_never_expires_early) {
  slabpool::resource_pool_options<conn> o;  // real clock: borrow and return read the cache
  o.idle_timeout = 60s;
  o.max_lifetime.reset();
  pool_t pool(make_conn, o);
  {
    auto a = pool.acquire();  // creation reads the real clock and refreshes the cache
    EXPECT_EQ(cached(), source());
    advance_source(10min);  // nothing refreshes the cache while it is leased
  }  // the return stamps the stale cache: 10 min before the return really happened
  EXPECT_EQ(cached(), source() - std::chrono::nanoseconds(10min).count());
  pool.housekeep();  // the stamp says idle for 10 min: corrected to now, not destroyed
  EXPECT_EQ(cached(), source());
  EXPECT_EQ(pool.stats().destroyed_idle, 0u);
  EXPECT_EQ(pool.stats().idle, 1u);
  advance_source(59s);
  pool.housekeep();
  EXPECT_EQ(pool.stats().destroyed_idle, 0u);
  advance_source(2s);  // idle_timeout after the pass that corrected it: now it goes
  pool.housekeep();
  EXPECT_EQ(pool.stats().destroyed_idle, 1u);
}

TEST_F(cached_clock, borrow_sees_lifetime_through_the_cache_until_a_refresh) {
  slabpool::resource_pool_options<conn> o;
  o.max_lifetime = 60s;
  o.lifetime_jitter = 0;
  o.idle_timeout.reset();
  pool_t pool(make_conn, o);
  long id;
  {
    auto a = pool.acquire();
    id = a->id;
  }
  advance_source(61s);
  {
    auto b = pool.acquire();  // the cache lags: still within its lifetime (the documented S)
    EXPECT_EQ(b->id, id);
  }
  EXPECT_EQ(pool.stats().destroyed_lifetime, 0u);
  slabpool::detail::t_rp_clock_budget = 0;  // this thread's next return reads the real clock
  {
    auto c = pool.acquire();  // the borrow does not refresh: still the same object
    EXPECT_EQ(c->id, id);
  }  // the return does: expired, destroyed
  EXPECT_EQ(pool.stats().destroyed_lifetime, 1u);
  EXPECT_EQ(cached(), source());
  {
    auto d = pool.acquire();
    EXPECT_NE(d->id, id);
  }
  // A housekeeping pass refreshes the cache too.
  advance_source(1s);
  pool.housekeep();
  EXPECT_EQ(cached(), source());
}

TEST_F(cached_clock, a_fake_clock_is_read_directly) {
  auto o = fake_clock_options();
  o.idle_timeout = 10s;
  pool_t pool(make_conn, o);
  fill(pool, 1);
  advance_source(1h);  // the cache and its source are not the pool's clock
  advance(11s);
  pool.housekeep();
  EXPECT_EQ(pool.stats().destroyed_idle, 1u);
  EXPECT_EQ(cached(), 0);
}

}  // namespace
