// resource_pool with real TCP connections to a server on 127.0.0.1 that the test starts, stops
// and starts again: broken connections are detected (validation or discard) and replaced, a
// refused connect reaches the caller as the factory's error, nothing hangs.
#include <gtest/gtest.h>
#include <slabpool/resource_pool.hpp>

#include <atomic>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#include "resource_pool_loopback.hpp"
#include "resource_pool_test_util.hpp"

namespace {

using namespace rp_test;
using tcp_pool = slabpool::resource_pool<loopback::connection>;

slabpool::resource_pool_options<loopback::connection> tcp_options() {
  slabpool::resource_pool_options<loopback::connection> o;
  o.clock = fake_now;
  o.max_open = 4;
  o.acquire_timeout = 30s;
  o.validate = [](loopback::connection& c) { return c.ping(); };
  o.validate_after = 1s;
  return o;
}

TEST(resource_pool_tcp, threads_share_a_few_real_connections) {
  loopback::server server;
  const int port = server.start();
  tcp_pool pool([port] { return loopback::connection(port); }, tcp_options());
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        auto c = pool.acquire();
        if (auto r = c->command("INCR"); r && r->front() == ':')
          ++ok;
        else
          c.discard();
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 800);
  EXPECT_LE(server.accepted(), 4);  // never more than max_open connections
  EXPECT_EQ(pool.stats().open, static_cast<std::size_t>(server.accepted()));
}

TEST(resource_pool_tcp, the_server_going_away_and_coming_back) {
  loopback::server server;
  const int port = server.start();
  tcp_pool pool([port] { return loopback::connection(port); }, tcp_options());
  {
    auto a = pool.acquire(), b = pool.acquire();
    ASSERT_TRUE(a->ping() && b->ping());
  }
  server.stop();  // both pooled connections are now dead, and connects are refused
  advance(2s);    // idle longer than validate_after: the next borrow validates
  try {
    auto c = pool.acquire();
    FAIL() << "got a connection while the server is down";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::connection_refused) << e.what();
  }
  auto st = pool.stats();
  EXPECT_EQ(st.destroyed_validation, 2u);  // both found dead and destroyed
  EXPECT_EQ(st.open, 0u);                  // and the failed connect gave its place back
  EXPECT_GE(st.create_failures, 1u);

  server.start(port);  // back on the same port
  auto c = pool.acquire();
  EXPECT_TRUE(c->ping());
  c.reset();

  // Without waiting for validation: the user sees the failure and discards.
  server.stop();
  server.start(port);
  {
    auto d = pool.acquire();  // idle < validate_after: handed out unchecked, but it is dead
    if (!d->ping()) d.discard();
  }
  auto e = pool.acquire();
  EXPECT_TRUE(e->ping());
  st = pool.stats();
  EXPECT_EQ(st.destroyed_broken, 1u);
  EXPECT_EQ(server.accepted(), 4);  // the first two, one after each restart: no more
}

TEST(resource_pool_tcp, waiters_do_not_hang_while_the_server_is_down) {
  loopback::server server;
  const int port = server.start();
  auto o = tcp_options();
  o.max_open = 1;
  tcp_pool pool([port] { return loopback::connection(port); }, o);
  auto held = pool.acquire();
  std::atomic<int> refused{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 3; ++i) {
    ts.emplace_back([&] {
      try {
        auto c = pool.acquire(30s);
        if (!c->ping()) c.discard();
      } catch (const std::system_error&) {
        ++refused;  // its turn came and the connect was refused
      }
    });
  }
  ASSERT_TRUE(eventually([&] { return pool.stats().waiting == 3; }));
  server.stop();
  held.discard();  // the broken one is destroyed: each waiter in turn may create, and fails
  for (auto& t : ts) t.join();
  EXPECT_EQ(refused.load(), 3);
  EXPECT_EQ(pool.stats().open, 0u);
}

}  // namespace
