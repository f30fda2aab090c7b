// Fragmentation: fill the heap with blocks of many sizes, free a random 90 %, then allocate the
// same volume again with a shifted size mix so the new blocks do not fit the old holes exactly. An
// allocator that cannot reuse the holes (or return them) ends with far more resident memory than
// live data. Prints one machine-readable RESULT line.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "bench_alloc.hpp"
#include "bench_util.hpp"

namespace {

struct block {
  void* p;
  size_t size;
};

// Log-uniform size in [min, max]: as many blocks of 16-32 B as of 8-16 KiB, the mix of a program
// that holds both nodes and buffers.
size_t log_uniform(bench::rng& r, size_t min_size, size_t max_size) {
  const double lo = std::log(static_cast<double>(min_size));
  const double hi = std::log(static_cast<double>(max_size));
  const double u = static_cast<double>(r.next() >> 11) / 9007199254740992.0;
  return static_cast<size_t>(std::exp(lo + u * (hi - lo)));
}

// Writes every page of the block so that resident memory reflects what was handed out.
void touch(void* p, size_t n) {
  auto* c = static_cast<unsigned char*>(p);
  for (size_t i = 0; i < n; i += 4096) c[i] = 1;
  c[n - 1] = 1;
}

// Allocates blocks until `bytes` were requested; returns the number of allocations.
size_t fill(std::vector<block>& blocks, bench::rng& r, size_t bytes, size_t min_size,
            size_t max_size) {
  size_t total = 0, count = 0;
  while (total < bytes) {
    size_t n = log_uniform(r, min_size, max_size);
    void* p = bench::mem_alloc(n);
    touch(p, n);
    blocks.push_back({p, n});
    total += n;
    ++count;
  }
  return count;
}

double mib(size_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

size_t live_bytes(const std::vector<block>& blocks) {
  size_t total = 0;
  for (const block& b : blocks) total += b.size;
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a(argc, argv);
  if (a.flag("--help")) {
    std::printf(
        "usage: sp_wl_fragmentation [--total-mib M] [--min-size B] [--max-size B] [--free-pct P]\n"
        "Allocates M MiB (default 256) in blocks of log-uniform sizes --min-size..--max-size\n"
        "(default 16..16384), frees a random P%% (default 90), then allocates the freed volume\n"
        "again with sizes 1.5x larger, touching every page. Reports resident memory after each\n"
        "phase and its ratio to the bytes live at the end.\n"
        "Prints: RESULT workload=fragmentation ... ops_per_s=.. rss_full_mib=.. rss_holes_mib=..\n"
        "rss_refill_mib=.. live_refill_mib=.. overhead=..\n");
    return 0;
  }
  const double total_mib = a.num("--total-mib", 256);
  const auto min_size = static_cast<size_t>(a.num("--min-size", 16));
  const auto max_size = static_cast<size_t>(a.num("--max-size", 16384));
  const int free_pct = static_cast<int>(a.num("--free-pct", 90));
  a.finish();
  if (total_mib <= 0 || min_size < 1 || max_size < min_size || free_pct < 0 || free_pct > 100) {
    std::fprintf(stderr, "error: invalid arguments (see --help)\n");
    return 2;
  }
  const auto bytes = static_cast<size_t>(total_mib * 1024 * 1024);
  bench::rng r(2024);
  std::vector<block> blocks;
  blocks.reserve(bytes / min_size / 16);

  const double t0 = bench::now_seconds();
  size_t ops = fill(blocks, r, bytes, min_size, max_size);
  const size_t rss_full = bench::current_rss_bytes();

  // Free a random subset: shuffle, then free the tail.
  for (size_t i = blocks.size(); i > 1; --i) std::swap(blocks[i - 1], blocks[r.below(i)]);
  const size_t keep = blocks.size() * static_cast<size_t>(100 - free_pct) / 100;
  size_t freed_bytes = 0;
  for (size_t i = keep; i < blocks.size(); ++i) {
    freed_bytes += blocks[i].size;
    bench::mem_free(blocks[i].p);
  }
  ops += blocks.size() - keep;
  blocks.resize(keep);
  const size_t rss_holes = bench::current_rss_bytes();

  ops += fill(blocks, r, freed_bytes, min_size * 3 / 2, max_size * 3 / 2);
  const double elapsed = bench::now_seconds() - t0;
  const size_t rss_refill = bench::current_rss_bytes();
  const size_t live = live_bytes(blocks);
  for (const block& b : blocks) bench::mem_free(b.p);

  std::printf(
      "RESULT workload=fragmentation api=%s total_mib=%.0f seconds=%.3f ops=%zu "
      "ops_per_s=%.0f rss_full_mib=%.1f rss_holes_mib=%.1f rss_refill_mib=%.1f "
      "live_refill_mib=%.1f overhead=%.3f\n",
      bench::kAllocApi, total_mib, elapsed, ops, static_cast<double>(ops) / elapsed, mib(rss_full),
      mib(rss_holes), mib(rss_refill), mib(live),
      static_cast<double>(rss_refill) / static_cast<double>(live));
  return 0;
}
