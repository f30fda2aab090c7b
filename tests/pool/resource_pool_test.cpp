// resource_pool<T>: bounds, acquire/try_acquire/timeouts, factory failures, discard, validation,
// reset, close with waiters, FIFO service, configuration errors, stats (struct and JSON).
#define SLABPOOL_POOL_CHECKS 1  // the destroyed-with-leases-out death test needs checked mode
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>
#include <slabpool/resource_pool.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "resource_pool_test_util.hpp"

namespace {

using namespace rp_test;
using pool_t = slabpool::resource_pool<conn>;

conn make_conn() {
  return conn();
}

TEST(resource_pool, reuses_an_idle_object) {
  conn::zero();
  pool_t pool(make_conn, fake_clock_options());
  long first;
  {
    auto a = pool.acquire();
    first = a->id;
  }
  auto b = pool.acquire();
  EXPECT_EQ(b->id, first);
  EXPECT_EQ(pool.stats().created, 1u);
  EXPECT_EQ(pool.stats().in_use, 1u);
}

TEST(resource_pool, never_more_than_max_open_and_try_acquire_does_not_wait) {
  auto o = fake_clock_options();
  o.max_open = 2;
  pool_t pool(make_conn, o);
  auto a = pool.try_acquire();
  auto b = pool.try_acquire();
  auto c = pool.try_acquire();
  EXPECT_TRUE(a && b);
  EXPECT_FALSE(c);
  EXPECT_EQ(pool.stats().open, 2u);
  a.reset();
  EXPECT_TRUE(pool.try_acquire());
}

TEST(resource_pool, timeout_is_a_distinct_error) {
  auto o = fake_clock_options();
  o.max_open = 1;
  pool_t pool(make_conn, o);
  auto held = pool.acquire();
  try {
    pool.acquire(5ms);
    FAIL() << "acquire on an exhausted pool returned";
  } catch (const slabpool::resource_pool_timeout& e) {
    EXPECT_EQ(e.code(), slabpool::resource_errc::timeout);
  }
  // A deadline already past: the same error, without waiting for anything.
  EXPECT_THROW(pool.acquire_until(std::chrono::steady_clock::now() - 1s),
               slabpool::resource_pool_timeout);
  const auto st = pool.stats();
  EXPECT_EQ(st.timeouts, 2u);
  EXPECT_EQ(st.waiting, 0u);
}

TEST(resource_pool, a_throwing_factory_gives_its_place_back) {
  auto o = fake_clock_options();
  o.max_open = 1;
  int calls = 0;
  pool_t pool(
      [&calls] {
        if (++calls <= 2) throw std::runtime_error("connection refused");
        return conn();
      },
      o);
  EXPECT_THROW(pool.acquire(), std::runtime_error);
  EXPECT_THROW(pool.try_acquire(), std::runtime_error);
  EXPECT_EQ(pool.stats().open, 0u);
  auto ok = pool.acquire(1s);  // the capacity is free again
  EXPECT_TRUE(ok);
  EXPECT_EQ(pool.stats().create_failures, 2u);
  EXPECT_EQ(pool.stats().created, 1u);
}

TEST(resource_pool, a_factory_returning_nullopt_is_create_failed) {
  bool fail = true;
  slabpool::resource_pool<conn> pool(
      [&fail]() -> std::optional<conn> {
        if (fail) return std::nullopt;
        return conn();
      },
      fake_clock_options());
  try {
    pool.acquire();
    FAIL();
  } catch (const slabpool::resource_pool_error& e) {
    EXPECT_EQ(e.code(), slabpool::resource_errc::create_failed);
  }
  fail = false;
  EXPECT_TRUE(pool.acquire());
  EXPECT_EQ(pool.stats().open, 1u);
}

TEST(resource_pool, discard_destroys_with_the_hook_and_replaces) {
  conn::zero();
  auto o = fake_clock_options();
  o.max_open = 1;
  std::vector<long> destroyed;
  o.destroy = [&destroyed](conn& c) { destroyed.push_back(c.id); };
  pool_t pool(make_conn, o);
  auto a = pool.acquire();
  const long id = a->id;
  a.discard();
  EXPECT_FALSE(a);
  ASSERT_EQ(destroyed.size(), 1u);
  EXPECT_EQ(destroyed[0], id);
  auto b = pool.acquire(1s);
  EXPECT_NE(b->id, id);
  EXPECT_EQ(pool.stats().destroyed_broken, 1u);
  EXPECT_EQ(conn::alive(), 1);
}

TEST(resource_pool, failed_validation_is_replaced_transparently) {
  auto o = fake_clock_options();
  o.validate_after = 1s;
  o.validate = [](conn& c) { return c.healthy.load(); };
  pool_t pool(make_conn, o);
  long id;
  {
    auto a = pool.acquire();
    id = a->id;
    a->healthy = false;  // the server closed it while it sat idle
  }
  {
    auto fresh = pool.acquire();  // idle < validate_after: no check, same object
    EXPECT_EQ(fresh->id, id);
  }
  advance(2s);
  auto b = pool.acquire();
  EXPECT_NE(b->id, id);
  const auto st = pool.stats();
  EXPECT_EQ(st.validations, 1u);
  EXPECT_EQ(st.destroyed_validation, 1u);
  EXPECT_EQ(st.open, 1u);
}

TEST(resource_pool, reset_hook_runs_on_return_and_a_throwing_one_breaks_the_object) {
  auto o = fake_clock_options();
  int resets = 0;
  o.reset = [&resets](conn& c) {
    ++resets;
    if (!c.healthy) throw std::runtime_error("rollback failed");
  };
  pool_t pool(make_conn, o);
  { auto a = pool.acquire(); }
  EXPECT_EQ(resets, 1);
  {
    auto a = pool.acquire();
    a->healthy = false;
  }
  EXPECT_EQ(resets, 2);
  EXPECT_EQ(pool.stats().destroyed_broken, 1u);
  EXPECT_EQ(pool.stats().idle, 0u);
}

TEST(resource_pool, close_wakes_waiters_and_destroys_everything) {
  conn::zero();
  auto o = fake_clock_options();
  o.max_open = 1;
  auto pool = std::make_unique<pool_t>(make_conn, o);
  auto held = pool->acquire();
  std::atomic<int> closed_errors{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.emplace_back([&] {
      try {
        pool->acquire(60s);  // bounded; close() must end it long before
      } catch (const slabpool::resource_pool_closed& e) {
        if (e.code() == slabpool::resource_errc::closed) ++closed_errors;
      }
    });
  }
  ASSERT_TRUE(eventually([&] { return pool->stats().waiting == 3; }));
  pool->close();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(closed_errors.load(), 3);
  EXPECT_THROW(pool->try_acquire(), slabpool::resource_pool_closed);
  EXPECT_EQ(conn::alive(), 1);  // the leased one lives until it comes back
  held.reset();
  EXPECT_EQ(conn::alive(), 0);
  EXPECT_EQ(pool->stats().destroyed_closed, 1u);
}

TEST(resource_pool, waiters_are_served_first_come_first_served) {
  auto o = fake_clock_options();
  o.max_open = 1;
  pool_t pool(make_conn, o);
  auto held = pool.acquire();
  std::mutex m;
  std::vector<int> order;
  std::vector<std::thread> threads;
  for (int i = 0; i < 5; ++i) {
    threads.emplace_back([&, i] {
      auto l = pool.acquire(60s);
      std::lock_guard g(m);
      order.push_back(i);
    });
    // The next thread starts only once this one is queued.
    ASSERT_TRUE(eventually([&] { return pool.stats().waiting == static_cast<size_t>(i + 1); }));
  }
  held.reset();
  for (auto& t : threads) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(pool.stats().waits, 5u);
}

TEST(resource_pool, nonsense_configurations_are_rejected_naming_the_field) {
  auto expect_field = [](auto edit, const std::string& field) {
    auto o = fake_clock_options();
    edit(o);
    try {
      pool_t pool(make_conn, o);
      ADD_FAILURE() << "accepted a bad " << field;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  using opts = slabpool::resource_pool_options<conn>;
  expect_field([](opts& o) { o.max_open = 4, o.max_idle = 5; }, "max_idle");
  expect_field([](opts& o) { o.max_open = 4, o.min_idle = 5; }, "min_idle");
  expect_field([](opts& o) { o.max_idle = 2, o.min_idle = 3; }, "min_idle");
  expect_field([](opts& o) { o.idle_timeout = 0s; }, "idle_timeout");
  expect_field([](opts& o) { o.max_lifetime = -1s; }, "max_lifetime");
  expect_field([](opts& o) { o.acquire_timeout = 0s; }, "acquire_timeout");
  expect_field([](opts& o) { o.validate_after = -5ms; }, "validate_after");
  expect_field([](opts& o) { o.leak_threshold = 0s; }, "leak_threshold");
  expect_field([](opts& o) { o.lifetime_jitter = 0.9; }, "lifetime_jitter");
  expect_field([](opts& o) { o.keepalive_interval = 1s; }, "keepalive_interval");
  expect_field(
      [](opts& o) {
        o.validate = [](conn&) { return true; };
        o.keepalive_interval = 2h;
      },
      "keepalive_interval");
}

TEST(resource_pool, stats_appear_in_slabpool_json_stats) {
  auto o = fake_clock_options();
  o.name = "orders-db";
  pool_t pool(make_conn, o);
  auto a = pool.acquire();
  std::string text(1 << 16, '\0');
  const size_t n = sp_stats_format(text.data(), text.size(), 1);
  ASSERT_LT(n, text.size());
  text.resize(n);
  EXPECT_NE(text.find("\"sections\":{"), std::string::npos) << text;
  EXPECT_NE(text.find("\"resource_pools\":["), std::string::npos) << text;
  EXPECT_NE(text.find("{\"name\":\"orders-db\",\"max_open\":16,\"open\":1,\"in_use\":1"),
            std::string::npos)
      << text;
  const size_t t = sp_stats_format(text.data(), 0, 0);  // text mode too
  std::string plain(t + 1, '\0');
  sp_stats_format(plain.data(), plain.size(), 0);
  EXPECT_NE(plain.find("resource_pool orders-db: open 1/16"), std::string::npos) << plain;
}

TEST(resource_pool_death, destroying_the_pool_with_a_lease_out_aborts_in_checked_mode) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto pool = std::make_unique<pool_t>(make_conn, fake_clock_options());
        auto l = pool->acquire();
        pool.reset();
      },
      "destroyed while leases are out");
}

TEST(resource_pool, every_object_is_destroyed_once_when_the_pool_goes) {
  conn::zero();
  {
    auto o = fake_clock_options();
    o.max_open = 0;  // unbounded: grows past its first chunk of entries
    pool_t pool(make_conn, o);
    std::vector<pool_t::lease> leases;
    for (int i = 0; i < 150; ++i) leases.push_back(pool.acquire());
    EXPECT_EQ(pool.stats().open, 150u);
    leases.clear();
    EXPECT_EQ(pool.stats().idle, 150u);
  }
  EXPECT_EQ(conn::made.load(), 150);
  EXPECT_EQ(conn::alive(), 0);
}

// Go's sync.Mutex rule: a thread may take a returned object past queued waiters (barging) until
// the head of the queue has waited kStarveNs on the pool's clock; from then on returns go to the
// queue in order and nobody barges, until a served waiter had not waited that long or was last.
TEST(resource_pool_fairness, a_starving_waiter_is_served_before_a_barging_thread) {
  auto o = fake_clock_options();
  o.max_open = 1;
  pool_t pool(make_conn, o);
  auto held = pool.acquire();
  const long id = held->id;
  std::mutex m;
  std::vector<int> order;
  std::atomic<bool> let_go{false};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 2; ++i) {
    waiters.emplace_back([&, i] {
      auto l = pool.acquire(60s);
      {
        std::lock_guard g(m);
        order.push_back(i);
      }
      while (!let_go.load()) std::this_thread::yield();  // hold it while the main thread barges
    });
    ASSERT_TRUE(eventually([&] { return pool.stats().waiting == static_cast<size_t>(i + 1); }));
  }
  advance(std::chrono::nanoseconds(slabpool::detail::rp_core::kStarveNs + 1));
  held.reset();  // the head has starved: the object is handed to it, not left for a barger
  EXPECT_FALSE(pool.try_acquire());
  ASSERT_TRUE(eventually([&] {
    std::lock_guard g(m);
    return order.size() == 1;
  }));
  {
    std::lock_guard g(m);
    EXPECT_EQ(order[0], 0);
  }
  let_go = true;
  for (auto& t : waiters) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1}));
  auto again = pool.try_acquire();  // back to normal mode once the queue is empty
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id, id);
  EXPECT_EQ(pool.stats().waiting, 0u);
}

}  // namespace
