// Instructions per malloc+free pair (issue 2, "Speed to reach"). Runs the patterns below through
// one allocation interface and marks each measured loop so that scripts/inscount can count exactly
// it: under callgrind each loop's count is dumped separately (client requests); under `perf stat`
// the script runs the program twice with different pair counts and takes the difference.
//
// Patterns, for one size at a time:
//   live1  malloc+free of `size` while one other block of that size stays live
//   alone  the same with nothing else live (allocators whose page empties on every free pay here)
//   batch  1000 allocations, then 1000 frees in allocation order, counted per pair
//   empty  the loop with no allocation at all: the harness overhead included in the figures above
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "pmr_resources.hpp"

#if defined(SLABPOOL_BENCH_HAVE_SP)
#include "slabpool/slabpool.h"
#endif
#if defined(SLABPOOL_BENCH_HAVE_CALLGRIND)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(label) static_cast<void>(label)
#endif

namespace {

constexpr size_t kBatch = 1000;
constexpr size_t kWarmupPairs = 2000;  // fixed, so it cancels out of the perf-stat difference

// The interfaces being counted. Each is a tiny struct with inline alloc/free so the loop body is
// the call sequence a user of that interface would compile to, and nothing more.
struct malloc_api {
  void* alloc(size_t n) { return std::malloc(n); }
  void free(void* p, size_t) { std::free(p); }
};
#if defined(SLABPOOL_BENCH_HAVE_SP)
struct sp_api {
  void* alloc(size_t n) { return sp_malloc(n); }
  void free(void* p, size_t) { sp_free(p); }
};
struct sp_sized_api {
  void* alloc(size_t n) { return sp_malloc(n); }
  void free(void* p, size_t n) { sp_free_sized(p, n); }
};
#endif
struct pmr_api {
  std::pmr::memory_resource* r;  // called through the base pointer: virtual dispatch included
  void* alloc(size_t n) { return r->allocate(n, alignof(std::max_align_t)); }
  void free(void* p, size_t n) { r->deallocate(p, n, alignof(std::max_align_t)); }
};

struct measurement {
  std::string label;
  double ns_per_pair;
};

// noinline keeps each loop a separate, stable piece of code (and a separate callgrind function).
template <typename Api>
[[gnu::noinline]] double run_loop(Api& api, const std::string& pattern, size_t size, size_t pairs,
                                  const char* label) {
  void* keep = pattern == "live1" ? api.alloc(size) : nullptr;
  std::vector<void*> blocks(kBatch);
  const double t0 = bench::now_seconds();
  if (label != nullptr) CALLGRIND_ZERO_STATS;
  if (pattern == "batch") {
    for (size_t round = 0; round < pairs / kBatch; ++round) {
      for (void*& p : blocks) {
        p = api.alloc(size);
        bench::escape(p);
      }
      for (void* p : blocks) api.free(p, size);
    }
  } else if (pattern == "empty") {
    for (size_t i = 0; i < pairs; ++i) bench::escape(i);
  } else {
    for (size_t i = 0; i < pairs; ++i) {
      void* p = api.alloc(size);
      bench::escape(p);
      api.free(p, size);
    }
  }
  if (label != nullptr) CALLGRIND_DUMP_STATS_AT(label);
  const double t1 = bench::now_seconds();
  if (keep != nullptr) api.free(keep, size);
  return (t1 - t0) * 1e9 / static_cast<double>(pairs);
}

template <typename Api>
void run_all(Api& api, bench::resource_slot* slot, const std::vector<std::string>& patterns,
             const std::vector<size_t>& sizes, size_t pairs, const std::string& api_name) {
  for (const auto& pattern : patterns) {
    for (size_t size : sizes) {
      if (slot != nullptr) slot->reset();  // monotonic/arena start each pattern empty
      run_loop(api, pattern, size, kWarmupPairs, nullptr);
      const std::string label =
          api_name + "|" + pattern + "|" + std::to_string(size) + "|" + std::to_string(pairs);
      const double ns = run_loop(api, pattern, size, pairs, label.c_str());
      std::printf("INSCOUNT api=%s pattern=%s size=%zu pairs=%zu ns_per_pair=%.2f\n",
                  api_name.c_str(), pattern.c_str(), size, pairs, ns);
    }
  }
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

std::vector<std::string> api_names() {
  std::vector<std::string> names = {"malloc"};
#if defined(SLABPOOL_BENCH_HAVE_SP)
  names.push_back("sp");
  names.push_back("sp_sized");
#endif
  for (const auto& r : bench::resource_names()) names.push_back("pmr:" + r);
  return names;
}

void usage() {
  std::printf(
      "usage: sp_inscount [--api NAME] [--patterns LIST] [--sizes LIST] [--pairs N] [--list]\n"
      "Runs malloc+free pair loops and marks each for an instruction counter (see\n"
      "scripts/inscount, which runs this under callgrind or perf stat and prints the table).\n"
      "  --api NAME       malloc (whatever LD_PRELOAD provides), sp (sp_malloc/sp_free),\n"
      "                   sp_sized (sp_free_sized), pmr:<resource>; default malloc\n"
      "  --patterns LIST  comma list of live1,alone,batch,empty; default live1,alone,batch\n"
      "  --sizes LIST     comma list of byte sizes; default 16,32,64,128,256,512,1024,2048,4096\n"
      "  --pairs N        measured pairs per pattern (batch: rounded down to 1000s); default "
      "20000\n"
      "  --list           print the available --api names and exit\n"
      "Prints one line per pattern: INSCOUNT api=.. pattern=.. size=.. pairs=.. ns_per_pair=..\n"
      "(ns is wall time of the native run; meaningless under valgrind).\n");
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a(argc, argv);
  if (a.flag("--help") || a.flag("-h")) {
    usage();
    return 0;
  }
  const bool list = a.flag("--list");
  const std::string api = a.str("--api", "malloc");
  const auto patterns = split(a.str("--patterns", "live1,alone,batch"));
  std::vector<size_t> sizes;
  for (const auto& s : split(a.str("--sizes", "16,32,64,128,256,512,1024,2048,4096"))) {
    sizes.push_back(std::stoul(s));
  }
  const auto pairs = static_cast<size_t>(a.num("--pairs", 20000));
  a.finish();
  if (list) {
    for (const auto& n : api_names()) std::printf("%s\n", n.c_str());
    return 0;
  }
  for (const auto& p : patterns) {
    if (p != "live1" && p != "alone" && p != "batch" && p != "empty") {
      std::fprintf(stderr, "error: unknown pattern '%s'\n", p.c_str());
      return 2;
    }
  }
  if (pairs < kBatch) {
    std::fprintf(stderr, "error: --pairs must be at least %zu\n", kBatch);
    return 2;
  }
  if (api == "malloc") {
    malloc_api m;
    run_all(m, nullptr, patterns, sizes, pairs, api);
#if defined(SLABPOOL_BENCH_HAVE_SP)
  } else if (api == "sp") {
    sp_api s;
    run_all(s, nullptr, patterns, sizes, pairs, api);
  } else if (api == "sp_sized") {
    sp_sized_api s;
    run_all(s, nullptr, patterns, sizes, pairs, api);
#endif
  } else if (api.rfind("pmr:", 0) == 0) {
    auto slot = bench::make_resource(api.substr(4));
    if (slot == nullptr) {
      std::fprintf(stderr, "error: resource '%s' is not available (see --list)\n", api.c_str());
      return 2;
    }
    pmr_api p{slot->get()};
    run_all(p, slot.get(), patterns, sizes, pairs, api);
  } else {
    std::fprintf(stderr, "error: unknown --api '%s' (see --list)\n", api.c_str());
    return 2;
  }
  return 0;
}
