// Server-like churn: each thread keeps a table of live blocks (requests, buffers, strings) and
// keeps replacing random entries. A share of the replaced blocks is handed to another thread to
// free, as when a response built on one worker is released on another. Runs for a fixed duration
// and prints one machine-readable RESULT line.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "bench_alloc.hpp"
#include "bench_util.hpp"

namespace {

struct config {
  int threads = 2;
  double seconds = 2.0;
  size_t slots = 20000;
  size_t max_size = 65536;
  int remote_pct = 25;
};

// Blocks waiting for their cross-thread free. Hand-over is batched so the mutex is taken once per
// kHandoff blocks and the figure reflects the allocator, not this queue.
struct mailbox {
  std::mutex mu;
  std::vector<void*> blocks;
};
constexpr size_t kHandoff = 64;

struct worker_stats {
  uint64_t ops = 0;
  uint64_t remote = 0;
};

void touch(void* p, size_t n) {
  auto* c = static_cast<unsigned char*>(p);
  c[0] = 1;
  c[n - 1] = 2;
}

void drain(mailbox& box, std::vector<void*>& scratch, worker_stats& st) {
  {
    std::lock_guard<std::mutex> lock(box.mu);
    scratch.swap(box.blocks);
  }
  for (void* p : scratch) bench::mem_free(p);
  st.ops += scratch.size();
  scratch.clear();
}

void worker(int id, const config& cfg, std::vector<mailbox>& boxes, std::atomic<bool>& stop,
            worker_stats& st) {
  bench::rng r(0x1000 + static_cast<uint64_t>(id));
  std::vector<void*> table(cfg.slots, nullptr);
  std::vector<void*> outbox, scratch;
  outbox.reserve(kHandoff);
  for (auto& p : table) {
    size_t n = bench::skewed_size(r, cfg.max_size);
    p = bench::mem_alloc(n);
    touch(p, n);
  }
  uint64_t step = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    for (int i = 0; i < 256; ++i, ++step) {
      void*& slot = table[r.below(table.size())];
      if (cfg.threads > 1 && static_cast<int>(r.below(100)) < cfg.remote_pct) {
        outbox.push_back(slot);
        if (outbox.size() == kHandoff) {
          int target = static_cast<int>((id + 1 + r.below(cfg.threads - 1)) % cfg.threads);
          std::lock_guard<std::mutex> lock(boxes[target].mu);
          boxes[target].blocks.insert(boxes[target].blocks.end(), outbox.begin(), outbox.end());
          st.remote += outbox.size();
          outbox.clear();
        }
      } else {
        bench::mem_free(slot);
        ++st.ops;
      }
      size_t n = bench::skewed_size(r, cfg.max_size);
      slot = bench::mem_alloc(n);
      touch(slot, n);
      ++st.ops;
    }
    drain(boxes[id], scratch, st);
  }
  for (void* p : outbox) bench::mem_free(p);
  for (void* p : table) bench::mem_free(p);
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a(argc, argv);
  if (a.flag("--help")) {
    std::printf(
        "usage: sp_wl_churn [--threads N] [--seconds S] [--slots N] [--max-size B] "
        "[--remote-pct P]\n"
        "Each of N threads (default 2) keeps --slots live blocks (default 20000) of skewed random\n"
        "sizes up to --max-size bytes (default 65536) and replaces random ones for S seconds\n"
        "(default 2). P%% of the replaced blocks (default 25) are freed by another thread.\n"
        "Prints: RESULT workload=churn threads=.. seconds=.. ops=.. ops_per_s=.. remote_frees=..\n"
        "(ops counts allocations and frees).\n");
    return 0;
  }
  config cfg;
  cfg.threads = static_cast<int>(a.num("--threads", cfg.threads));
  cfg.seconds = a.num("--seconds", cfg.seconds);
  cfg.slots = static_cast<size_t>(a.num("--slots", static_cast<double>(cfg.slots)));
  cfg.max_size = static_cast<size_t>(a.num("--max-size", static_cast<double>(cfg.max_size)));
  cfg.remote_pct = static_cast<int>(a.num("--remote-pct", cfg.remote_pct));
  a.finish();
  if (cfg.threads < 1 || cfg.slots < 1 || cfg.max_size < 16) {
    std::fprintf(stderr, "error: need --threads >= 1, --slots >= 1, --max-size >= 16\n");
    return 2;
  }

  std::vector<mailbox> boxes(static_cast<size_t>(cfg.threads));
  std::vector<worker_stats> stats(static_cast<size_t>(cfg.threads));
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const double t0 = bench::now_seconds();
  for (int i = 0; i < cfg.threads; ++i) {
    threads.emplace_back(worker, i, std::cref(cfg), std::ref(boxes), std::ref(stop),
                         std::ref(stats[static_cast<size_t>(i)]));
  }
  while (bench::now_seconds() - t0 < cfg.seconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop.store(true);
  for (auto& t : threads) t.join();
  const double elapsed = bench::now_seconds() - t0;
  uint64_t ops = 0, remote = 0;
  // Leftover hand-overs are freed after the clock stopped and are not counted.
  for (auto& box : boxes) {
    for (void* p : box.blocks) bench::mem_free(p);
  }
  for (auto& s : stats) {
    ops += s.ops;
    remote += s.remote;
  }
  std::printf(
      "RESULT workload=churn api=%s threads=%d seconds=%.3f ops=%llu ops_per_s=%.0f "
      "remote_frees=%llu\n",
      bench::kAllocApi, cfg.threads, elapsed, static_cast<unsigned long long>(ops),
      static_cast<double>(ops) / elapsed, static_cast<unsigned long long>(remote));
  return 0;
}
