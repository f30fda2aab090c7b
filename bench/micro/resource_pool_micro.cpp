// resource_pool<T> (issue 14) against the hand-written mutex + condition variable + deque pool:
// acquire+release throughput and acquire latency (p50, p99, max) at 1, 2, 8 and 64 threads, with
// max_open above the thread count (2x: nobody waits) and below it (threads/4: most acquires
// wait). Each lease touches its object and gives it back at once, so contended runs measure the
// hand-off itself. resource_pool runs twice: with its default idle timeout and max lifetime
// (they read the pools' cached clock on acquire and on release) and "untimed", with the features
// the hand-written pool has. Fairness = ops of the slowest thread / ops of the fastest (1 = even
// service).
//
// Each case runs in two halves: throughput comes from the first, where nothing but the pool runs
// in the loop; latency from the second, where every 8th acquire is timed; fairness from both (the
// window it had before, which matters with 64 threads on few cores). (Until 2026-11-29 one loop
// did both: a steady_clock read costs 30-70 ns on the bench VM (more under load), so the two of a
// sample added 8-17 ns to every operation of every pool, about as much as resource_pool's whole
// uncontended pair, and compressed every throughput ratio toward 1.)
//
// Prints one line per case: RESULT impl=<name> threads=N max_open=M mops=... p50_ns=...
// p99_ns=... max_ns=... fairness=...   (scripts/bench reads these; see bench/README.md)
#include <slabpool/resource_pool.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "mutex_deque_pool.hpp"

namespace {

using clk = std::chrono::steady_clock;

struct connection {  // stands for a socket or a database handle: some state to touch
  long uses = 0;
  char buffer[56] = {};
};

constexpr int kSampleEvery = 8;            // latency sampled on every 8th acquire (two clock reads)
constexpr std::size_t kSamples = 1 << 15;  // per thread, a ring of the latest samples

struct thread_result {
  long ops = 0;      // in the throughput half
  long all_ops = 0;  // in both halves (fairness: the longer window)
  std::vector<std::uint32_t> samples;
};

// timed: the defaults (idle timeout and max lifetime on: the cached clock read on acquire and
// on release, a real read every 64th release). Untimed: both off, the features the hand-written
// pool has (no clock read).
template <bool kTimed>
struct sp_impl {
  explicit sp_impl(std::size_t max_open) : pool([] { return connection(); }, opts(max_open)) {}
  static slabpool::resource_pool_options<connection> opts(std::size_t max_open) {
    slabpool::resource_pool_options<connection> o;
    o.name = "bench";
    o.max_open = max_open;
    o.acquire_timeout = std::chrono::seconds(60);
    if (!kTimed) {
      o.idle_timeout.reset();
      o.max_lifetime.reset();
    }
    return o;
  }
  void one() {
    auto l = pool.acquire();
    ++l->uses;
  }
  slabpool::resource_pool<connection> pool;
};

struct baseline_impl {
  explicit baseline_impl(std::size_t max_open) : pool(max_open) {}
  void one() {
    connection* c = pool.acquire(clk::now() + std::chrono::seconds(60));
    ++c->uses;
    pool.release(c);
  }
  bench::mutex_deque_pool<connection> pool;
};

template <class Impl>
void run_case(const char* name, int threads, std::size_t max_open, double seconds) {
  Impl impl(max_open);
  std::atomic<bool> go{false}, timing{false}, stop{false};
  std::atomic<int> ready{0};
  std::vector<thread_result> results(static_cast<std::size_t>(threads));
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      thread_result& r = results[static_cast<std::size_t>(t)];
      r.samples.reserve(kSamples);
      ++ready;
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      long ops = 0;
      while (!timing.load(std::memory_order_relaxed)) {
        impl.one();
        ++ops;
      }
      r.ops = ops;
      std::size_t next = 0;
      long n = 0;
      for (; !stop.load(std::memory_order_relaxed); ++n) {
        if (n % kSampleEvery == 0) {
          const auto t0 = clk::now();
          impl.one();  // the acquire dominates; release is a store or a hand-off
          const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now() - t0);
          const auto v = static_cast<std::uint32_t>(std::min<long long>(ns.count(), UINT32_MAX));
          if (r.samples.size() < kSamples)
            r.samples.push_back(v);
          else
            r.samples[next++ % kSamples] = v;
        } else {
          impl.one();
        }
      }
      r.all_ops = ops + n;
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  const auto half = std::chrono::duration<double>(seconds / 2);
  const auto start = clk::now();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(half);
  timing.store(true);
  const double elapsed = std::chrono::duration<double>(clk::now() - start).count();
  std::this_thread::sleep_for(half);
  stop.store(true);
  for (auto& th : ts) th.join();
  long total = 0, lo = results[0].all_ops, hi = results[0].all_ops;
  std::vector<std::uint32_t> all;
  for (const auto& r : results) {
    total += r.ops;
    lo = std::min(lo, r.all_ops);
    hi = std::max(hi, r.all_ops);
    all.insert(all.end(), r.samples.begin(), r.samples.end());
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0.0
                       : static_cast<double>(all[static_cast<std::size_t>(p * (all.size() - 1))]);
  };
  // The sampled acquires include one release each (the previous lease's); both pools alike.
  std::printf(
      "RESULT impl=%s threads=%d max_open=%zu mops=%.3f p50_ns=%.0f p99_ns=%.0f "
      "max_ns=%.0f fairness=%.3f\n",
      name, threads, max_open, total / elapsed / 1e6, pct(0.50), pct(0.99),
      all.empty() ? 0.0 : static_cast<double>(all.back()), hi > 0 ? double(lo) / hi : 0.0);
  std::fflush(stdout);
}

// --count: exactly `ops` acquire+release pairs of one implementation on this thread, nothing
// else, for instruction counts (callgrind on two op counts, the difference divided by the
// difference in ops: what one pair costs, without start-up).
template <class Impl>
int count_ops(std::size_t max_open, long ops) {
  Impl impl(max_open);
  for (long i = 0; i < ops; ++i) impl.one();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0.5;
  std::vector<int> thread_counts{1, 2, 8, 64};
  const char* count_impl = nullptr;
  long count = 0;
  std::size_t count_max_open = 1;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (!std::strcmp(argv[i], "--count") && i + 3 < argc) {
      count_impl = argv[++i];
      count = std::atol(argv[++i]);
      count_max_open = static_cast<std::size_t>(std::atol(argv[++i]));
    } else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      thread_counts.clear();
      for (char* s = std::strtok(argv[++i], ","); s; s = std::strtok(nullptr, ","))
        thread_counts.push_back(std::atoi(s));
    } else {
      std::printf(
          "usage: %s [--seconds S] [--threads 1,2,8,64] | --count IMPL OPS MAX_OPEN\n"
          "resource_pool vs a mutex+condvar+deque pool: acquire+release throughput and acquire\n"
          "latency at each thread count, max_open 2x threads (above) and threads/4 (below).\n"
          "S seconds per case (default 0.5): throughput in the first half, latency samples in\n"
          "the second. Prints RESULT lines. --count: OPS acquire+release pairs of IMPL\n"
          "(resource_pool, resource_pool_untimed, mutex_deque) on one thread, for callgrind.\n",
          argv[0]);
      return std::strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  if (count_impl != nullptr) {
    if (!std::strcmp(count_impl, "resource_pool"))
      return count_ops<sp_impl<true>>(count_max_open, count);
    if (!std::strcmp(count_impl, "resource_pool_untimed"))
      return count_ops<sp_impl<false>>(count_max_open, count);
    if (!std::strcmp(count_impl, "mutex_deque"))
      return count_ops<baseline_impl>(count_max_open, count);
    std::fprintf(stderr, "unknown implementation %s\n", count_impl);
    return 2;
  }
  for (int threads : thread_counts) {
    const std::size_t above = static_cast<std::size_t>(threads) * 2;
    const std::size_t below = std::max(1, threads / 4);
    for (std::size_t max_open : {above, below}) {
      run_case<sp_impl<true>>("resource_pool", threads, max_open, seconds);
      run_case<baseline_impl>("mutex_deque", threads, max_open, seconds);
      run_case<sp_impl<false>>("resource_pool_untimed", threads, max_open, seconds);
    }
  }
  return 0;
}
