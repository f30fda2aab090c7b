// resource_pool with real TCP connections: 8 worker threads share 4 connections to a server on
// 127.0.0.1 (started here; the protocol is Redis's inline one, so redis-server would do too).
// Halfway through, the server goes away and comes back on the same port: workers see broken
// connections, discard them, retry, and the pool replaces them. Exits non-zero if a request was
// lost, a worker hung, or more than max_open connections were ever open at once.
#include <slabpool/slabpool.h>
#include <slabpool/resource_pool.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <system_error>
#include <thread>
#include <vector>

#include "resource_pool_loopback.hpp"

using namespace std::chrono_literals;

int main() {
  loopback::server server;
  const int port = server.start();

  slabpool::resource_pool<loopback::connection>::options o;
  o.name = "loopback-redis";
  o.max_open = 4;
  o.validate = [](loopback::connection& c) { return c.ping(); };  // after 500 ms idle
  o.acquire_timeout = 10s;
  slabpool::resource_pool<loopback::connection> pool([port] { return loopback::connection(port); },
                                                     o);

  constexpr int kWorkers = 8, kRequests = 400;
  std::atomic<int> done{0}, retries{0}, refused{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&] {
      for (int i = 0; i < kRequests; ++i) {
        for (int attempt = 0;; ++attempt) {
          try {
            auto c = pool.acquire();
            if (auto reply = c->command("INCR"); reply && reply->front() == ':') {
              ++done;
              break;
            }
            c.discard();  // broken: destroyed, its place freed for a fresh connection
            ++retries;
          } catch (const std::system_error& e) {
            ++refused;  // the server is down: the factory's connect failed
            std::this_thread::sleep_for(5ms);
          }
          if (attempt > 2000) return;  // gives up: counted as lost below
        }
      }
    });
  }
  // Take the server away for a moment while the workers run, then bring it back.
  while (done.load() < kWorkers * kRequests / 2) std::this_thread::sleep_for(1ms);
  server.stop();
  std::this_thread::sleep_for(50ms);
  server.start(port);
  for (auto& t : workers) t.join();

  const auto st = pool.stats();
  std::printf("requests %d/%d, retries on broken connections %d, refused connects %d\n",
              done.load(), kWorkers * kRequests, retries.load(), refused.load());
  std::printf(
      "pool: created %llu, destroyed broken %llu, validation %llu; waits %llu "
      "(max %.2f ms); server accepted %ld connections\n",
      static_cast<unsigned long long>(st.created),
      static_cast<unsigned long long>(st.destroyed_broken),
      static_cast<unsigned long long>(st.destroyed_validation),
      static_cast<unsigned long long>(st.waits), st.max_wait.count() / 1e6, server.accepted());
  sp_stats_print(1, 1);  // the pool appears in slabpool's JSON stats
  const bool ok = done.load() == kWorkers * kRequests && st.open <= 4 && st.in_use == 0;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
