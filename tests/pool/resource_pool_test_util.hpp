// Helpers for the resource_pool tests: a counted object, a fake clock, a pool maker.
#pragma once

#include <slabpool/resource_pool.hpp>

#include <atomic>
#include <chrono>
#include <thread>

namespace rp_test {

using namespace std::chrono_literals;

// A fake "connection": counts its constructions and destructions, catches double leasing.
struct conn {
  static inline std::atomic<long> made{0};
  static inline std::atomic<long> gone{0};
  static long alive() { return made.load() - gone.load(); }
  static void zero() { made = 0, gone = 0; }

  conn() : id(++made) {}
  conn(conn&& o) noexcept : id(o.id), healthy(o.healthy.load()) { o.id = 0; }
  ~conn() {
    if (id != 0) ++gone;
  }
  long id;
  std::atomic<bool> healthy{true};
  std::atomic<bool> leased{false};
};

// The pools' clock in these tests: moves only when a test says so.
inline std::atomic<long long> g_now_ns{1'000'000'000};
inline std::chrono::nanoseconds fake_now() {
  return std::chrono::nanoseconds(g_now_ns.load());
}
inline void advance(std::chrono::nanoseconds d) {
  g_now_ns += d.count();
}

inline slabpool::resource_pool_options<conn> fake_clock_options() {
  slabpool::resource_pool_options<conn> o;
  o.clock = fake_now;
  return o;
}

// Polls `cond` every millisecond for at most 10 s: tests wait for other threads' states, never
// for wall time to pass.
template <class F>
bool eventually(F cond) {
  for (int i = 0; i < 10000; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return cond();
}

}  // namespace rp_test
