// Soak test: many threads (default 8) allocate, free, realloc and hand blocks to each other with
// random sizes from 16 B to 1 MiB; threads exit and are replaced (their live blocks are freed later
// by others); the supervisor runs decay passes and full trims, and forks children that allocate,
// free and check in the copy. Every block's contents are checked before it is freed. Resident
// memory (/proc/self/statm) is sampled every 20 ms against the live (requested) bytes and must stay
// within
//   resident <= 1.25 x live + cache budget + threads x SLABPOOL_THREAD_CACHE + 48 MiB
// where live is the highest figure of the last 2 s (the trim delay, 500 ms, plus the pass interval,
// with margin): 1.25 covers size-class rounding (under 20 %) and partly used slabs; the cache
// budget (SLABPOOL_CACHE, 1 MiB by default, or half the bytes live in large blocks, whichever is
// more, over the same 2 s) and the thread caches (4 MiB a thread by default) are the free memory
// slabpool is allowed to keep; 48 MiB is the program itself, thread stacks and the current slab
// per class each thread may keep.
// Measured (8 threads, 30 s, 2 cores): peak resident 400 MiB for 258 MiB live (ratio 1.55),
// resident - live at most 145 MiB, against a bound of about 500 MiB. The run fails on any
// damaged block, failed allocation, failed child, or resident memory above the bound.
//
// Usage: slabpool_soak [--seconds N] [--threads N] [--seed N]
// The duration defaults to SLABPOOL_SOAK_SECONDS, else 90 s.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "common/proc_memory.hpp"
#include "slabpool/slabpool.h"
#include "soak_state.hpp"

namespace {

using namespace sp_soak;
using clock_type = std::chrono::steady_clock;

constexpr double kRatioBound = 1.25;
constexpr std::size_t kFixedAllowance = 48 * kMiB;

using sp_test::resident_bytes;

struct worker_slot {
  std::thread thread;
  std::shared_ptr<std::atomic<bool>> done;
};

void start_worker(soak_state& s, worker_slot& w, unsigned slot, sp_check::rng& r) {
  w.done = std::make_shared<std::atomic<bool>>(false);
  const std::uint64_t seed = r.next();
  const std::uint64_t ops = r.range(20'000, 200'000);
  w.thread = std::thread([&s, slot, seed, ops, done = w.done] {
    run_worker(s, slot, seed, ops);
    done->store(true);
  });
}

// Forks a child that runs child_checks on the supervisor's held blocks; waits at most 60 s.
bool fork_check(soak_state& s, std::vector<block>& held, std::uint64_t seed) {
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("soak: fork");
    return false;
  }
  if (pid == 0) _exit(child_checks(s, held, seed));
  for (int waited_ms = 0; waited_ms < 60'000; waited_ms += 10) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
      s.fail("forked child failed its checks", nullptr, static_cast<std::size_t>(status));
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  s.fail("forked child hung (deadlock after fork?)", nullptr, 0);
  return false;
}

unsigned long long arg_value(int argc, char** argv, const char* name, const char* env,
                             unsigned long long fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::strtoull(argv[i + 1], nullptr, 10);
  }
  if (env != nullptr) {
    if (const char* text = std::getenv(env); text != nullptr && *text != '\0') {
      return std::strtoull(text, nullptr, 10);
    }
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  soak_state s;
  const auto seconds = arg_value(argc, argv, "--seconds", "SLABPOOL_SOAK_SECONDS", 90);
  s.workers = static_cast<unsigned>(arg_value(argc, argv, "--threads", nullptr, 8));
  if (s.workers == 0 || s.workers > kMaxWorkers) s.workers = 8;
  const auto seed = arg_value(argc, argv, "--seed", nullptr, 20261127);
  sp_check::rng r(seed);
  const auto configured_cache = static_cast<std::size_t>(sp_option_get(SP_OPTION_CACHE_BYTES));
  const std::size_t allowance =
      s.workers * static_cast<std::size_t>(sp_option_get(SP_OPTION_THREAD_CACHE_BYTES)) +
      kFixedAllowance;
  std::printf(
      "soak: %llu s, %u threads, seed %llu, bound resident <= %.2f x live + max(%zu MiB, live "
      "in large blocks / 2) + %zu MiB\n",
      seconds, s.workers, seed, kRatioBound, configured_cache / kMiB, allowance / kMiB);
  std::fflush(stdout);

  std::vector<worker_slot> slots(s.workers);
  for (unsigned i = 0; i < s.workers; ++i) start_worker(s, slots[i], i, r);
  std::vector<block> held;  // taken from orphans; freed in the next forked child and here
  struct live_sample {
    clock_type::time_point at;
    std::size_t live;
    std::size_t large;
  };
  std::deque<live_sample> recent_live;
  std::size_t peak_rss = 0, peak_live = 0, worst_over = 0, worst_excess = 0, samples = 0;
  std::uint64_t threads_started = s.workers, forks = 0, trims = 0, decays = 0;
  const auto start = clock_type::now();
  auto last_decay = start, last_trim = start, last_fork = start;
  for (auto now = start; now - start < std::chrono::seconds(seconds); now = clock_type::now()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    now = clock_type::now();
    // Resident memory against the highest live figure of the last 2 s.
    const std::size_t live = s.live_bytes.load(), rss = resident_bytes();
    recent_live.push_back({now, live, s.live_large_bytes.load()});
    while (now - recent_live.front().at > std::chrono::seconds(2)) recent_live.pop_front();
    std::size_t live_hi = 0, large_hi = 0;
    for (const auto& sample : recent_live) {
      live_hi = std::max(live_hi, sample.live);
      large_hi = std::max(large_hi, sample.large);
    }
    const std::size_t cache_budget = std::max(configured_cache, large_hi / 2);
    const auto bound = static_cast<std::size_t>(kRatioBound * static_cast<double>(live_hi)) +
                       cache_budget + allowance;
    if (rss > bound) worst_over = std::max(worst_over, rss - bound);
    if (rss > live_hi) worst_excess = std::max(worst_excess, rss - live_hi);
    peak_rss = std::max(peak_rss, rss);
    peak_live = std::max(peak_live, live);
    ++samples;
    // Thread churn: replace every worker that finished its life.
    for (unsigned i = 0; i < s.workers; ++i) {
      if (!slots[i].done->load()) continue;
      slots[i].thread.join();
      start_worker(s, slots[i], i, r);
      ++threads_started;
    }
    if (now - last_decay > std::chrono::milliseconds(250)) {
      sp_trim_decay();
      ++decays;
      last_decay = now;
      std::lock_guard guard(s.orphans.lock);
      for (int k = 0; k < 32 && !s.orphans.blocks.empty(); ++k) {
        held.push_back(s.orphans.blocks.back());
        s.orphans.blocks.pop_back();
      }
    }
    if (now - last_trim > std::chrono::seconds(2)) {
      sp_trim();
      ++trims;
      last_trim = now;
    }
    if (!kThreadSanitizer && now - last_fork > std::chrono::seconds(3)) {
      fork_check(s, held, r.next());
      for (const block& b : held) drop_block(s, b, true);  // the parent's copies, freed here too
      held.clear();
      ++forks;
      last_fork = clock_type::now();
    }
  }
  s.stop = true;
  for (worker_slot& w : slots) w.thread.join();
  for (const block& b : held) drop_block(s, b, false);
  for (inbox& box : s.inboxes) {
    for (const block& b : box.blocks) drop_block(s, b, false);
  }
  for (const block& b : s.orphans.blocks) drop_block(s, b, false);

  const double ratio = peak_live > 0 ? static_cast<double>(peak_rss) / peak_live : 0;
  std::printf(
      "soak: %llu blocks allocated, %llu contents checks passed, %llu threads run, %llu forks, "
      "%llu trims, %llu decay passes\n",
      static_cast<unsigned long long>(s.allocations.load()),
      static_cast<unsigned long long>(s.ops_checked.load()),
      static_cast<unsigned long long>(threads_started), static_cast<unsigned long long>(forks),
      static_cast<unsigned long long>(trims), static_cast<unsigned long long>(decays));
  std::printf("soak: peak resident %.1f MiB, peak live %.1f MiB, ratio %.2f (%zu samples)\n",
              static_cast<double>(peak_rss) / kMiB, static_cast<double>(peak_live) / kMiB, ratio,
              samples);
  std::printf("soak: largest resident - live (2 s high) %.1f MiB\n",
              static_cast<double>(worst_excess) / kMiB);
  if (worst_over > 0 && kSanitized) {
    std::printf("soak: (sanitized build: the resident bound is not asserted)\n");
  } else if (worst_over > 0) {
    s.fail("resident memory above the bound", nullptr, worst_over);
    std::printf("soak: resident memory exceeded the bound by up to %.1f MiB\n",
                static_cast<double>(worst_over) / kMiB);
  }
  const auto failures = s.failures.load();
  std::printf("soak: %s (%llu failures)\n", failures == 0 ? "PASSED" : "FAILED",
              static_cast<unsigned long long>(failures));
  return failures == 0 ? 0 : 1;
}
