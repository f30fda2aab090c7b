// Shared state of the soak test: the blocks in flight between threads, the counters, and the
// failure record. Workers (soak_worker.cpp) and the supervisor (soak.cpp) both use it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "common/pattern.hpp"
#include "common/sanitized.hpp"

namespace sp_soak {

using sp_check::kKiB;
using sp_check::kMiB;

struct block {
  void* p;
  std::size_t size;
  std::uint64_t seed;
};

// Blocks handed to whoever runs in a worker slot; a slot's inbox outlives the thread in it, so a
// block sent to an exiting thread is freed by its successor.
struct inbox {
  std::mutex lock;
  std::vector<block> blocks;
};

inline constexpr unsigned kMaxWorkers = 64;

// Sanitizer runtimes add shadow memory (so the resident bound is reported, not asserted), and TSan
// cannot start threads in a child forked from a multi-threaded process (slabpool's fork handler
// restarts the trimmer there), so a TSan run skips the forks.
using sp_build::kSanitized;
using sp_build::kThreadSanitizer;

inline constexpr std::size_t kLargeAbove = 128 * kMiB / 1024;  // the largest size class

struct soak_state {
  unsigned workers = 8;
  std::size_t live_cap = 256 * kMiB;  // requested bytes live at once, across all threads
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> live_bytes{0};
  // Of which in blocks above the largest size class: the segment pool may keep half as many freed
  // bytes of them for reuse (the cache budget is SLABPOOL_CACHE or that, whichever is more).
  std::atomic<std::size_t> live_large_bytes{0};
  std::atomic<std::uint64_t> ops_checked{0};  // pattern checks that passed
  std::atomic<std::uint64_t> allocations{0};
  std::atomic<std::uint64_t> failures{0};
  inbox inboxes[kMaxWorkers];
  inbox orphans;  // blocks left by exited threads, freed later by others

  void note_live(std::size_t size, bool live) {
    if (live) {
      live_bytes.fetch_add(size, std::memory_order_relaxed);
      if (size > kLargeAbove) live_large_bytes.fetch_add(size, std::memory_order_relaxed);
    } else {
      live_bytes.fetch_sub(size, std::memory_order_relaxed);
      if (size > kLargeAbove) live_large_bytes.fetch_sub(size, std::memory_order_relaxed);
    }
  }

  // Records a failure (the first few are printed with the pointer and size).
  void fail(const char* what, const void* p, std::size_t size);
};

// Random sizes from 16 B to 1 MiB, weighted towards small ones as real programs are.
inline std::size_t random_size(sp_check::rng& r) {
  const std::uint64_t pick = r.next() % 1000;
  if (pick < 700) return r.range(16, 256);
  if (pick < 900) return r.range(257, 4 * kKiB);
  if (pick < 985) return r.range(4 * kKiB + 1, 64 * kKiB);
  return r.range(64 * kKiB + 1, kMiB);
}

// Allocates and fills a block (null p on failure, recorded); counts it as live.
block make_block(soak_state& s, std::size_t size, sp_check::rng& r);
// Checks a block's pattern and frees it (sized or not), from any thread.
void drop_block(soak_state& s, const block& b, bool sized);
// Checks a block's pattern; true when intact.
bool check_block(soak_state& s, const block& b);

// Runs one worker thread's life in slot `slot`: `ops` operations, then exit.
void run_worker(soak_state& s, unsigned slot, std::uint64_t seed, std::uint64_t ops);

// The fork check, run in a child: allocate, free and check on fresh heaps and threads, and free
// blocks the parent allocated (`inherited`). Returns the child's exit status (0 = good).
int child_checks(soak_state& s, std::vector<block>& inherited, std::uint64_t seed);

}  // namespace sp_soak
