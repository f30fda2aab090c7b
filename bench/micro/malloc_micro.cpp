// Google Benchmark suites for the plain malloc/free interface. One binary serves every allocator:
// scripts/bench runs it under LD_PRELOAD of jemalloc, mimalloc, tcmalloc and slabpool's shim (and
// without a preload for glibc). The -linked variant calls sp_malloc/sp_free directly.
#include <benchmark/benchmark.h>

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "bench_alloc.hpp"
#include "bench_util.hpp"

namespace {

constexpr int64_t kSizes[] = {16,   32,   64,   128,   256,   512,  1024,
                              2048, 4096, 8192, 16384, 32768, 65536};

// Immediate malloc+free of one size: the fast path, nothing else live.
void pair(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void* p = bench::mem_alloc(size);
    benchmark::DoNotOptimize(p);
    bench::mem_free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

// 1000 allocations, then 1000 frees in allocation order: exercises refills and slab turnover,
// which a single pair never reaches.
void batch1000(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  constexpr int kBatch = 1000;
  std::vector<void*> blocks(kBatch);
  for (auto _ : state) {
    for (auto& p : blocks) {
      p = bench::mem_alloc(size);
      benchmark::DoNotOptimize(p);
    }
    for (void* p : blocks) bench::mem_free(p);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// Random sizes with a live working set of `range(0)` blocks: every step frees one random live block
// and allocates another of a random size, so the heap stays fragmented the way real programs are.
// The random stream is precomputed so the generator is not part of the measurement.
void random_live(benchmark::State& state) {
  const auto live = static_cast<size_t>(state.range(0));
  constexpr size_t kSteps = 1 << 16;
  struct step {
    uint32_t slot;
    uint32_t size;
  };
  std::vector<step> steps(kSteps);
  bench::rng r(42);
  for (auto& s : steps) {
    s.slot = static_cast<uint32_t>(r.below(live));
    s.size = static_cast<uint32_t>(bench::skewed_size(r, 8192));
  }
  std::vector<void*> slots(live);
  for (auto& p : slots) p = bench::mem_alloc(bench::skewed_size(r, 8192));
  size_t i = 0;
  for (auto _ : state) {
    const step& s = steps[i++ & (kSteps - 1)];
    bench::mem_free(slots[s.slot]);
    slots[s.slot] = bench::mem_alloc(s.size);
    benchmark::DoNotOptimize(slots[s.slot]);
  }
  for (void* p : slots) bench::mem_free(p);
  state.SetItemsProcessed(state.iterations());
}

// Single-producer single-consumer ring of pointers; a cache line per index so the two threads do
// not false-share the counters.
class spsc_ring {
 public:
  static constexpr size_t kCapacity = 1024;
  bool push(void* p) {
    size_t h = head_.load(std::memory_order_relaxed);
    if (h - tail_.load(std::memory_order_acquire) == kCapacity) return false;
    slots_[h & (kCapacity - 1)] = p;
    head_.store(h + 1, std::memory_order_release);
    return true;
  }
  bool pop(void*& p) {
    size_t t = tail_.load(std::memory_order_relaxed);
    if (t == head_.load(std::memory_order_acquire)) return false;
    p = slots_[t & (kCapacity - 1)];
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

 private:
  alignas(64) std::atomic<size_t> head_{0};
  alignas(64) std::atomic<size_t> tail_{0};
  alignas(64) void* slots_[kCapacity] = {};
};

// The first two CPUs the calling thread may run on; false when it may run on fewer than two.
bool two_allowed_cpus(cpu_set_t* allowed, int* first, int* second) {
  if (pthread_getaffinity_np(pthread_self(), sizeof *allowed, allowed) != 0) return false;
  int found = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE && found < 2; ++cpu) {
    if (CPU_ISSET(cpu, allowed)) *(found++ == 0 ? first : second) = cpu;
  }
  return found == 2;
}

void pin_calling_thread(int cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  pthread_setaffinity_np(pthread_self(), sizeof one, &one);
}

// Cross-thread free: the benchmark thread allocates, a consumer thread frees. This is the
// producer/consumer pattern where allocators with per-thread caches must route frees back.
// The two threads are pinned to two different CPUs: left to the scheduler, they sometimes share
// a core and sometimes not, and the same allocator gave 4, 12 or 32 M ops/s from run to run
// (issue 12), so the row measured the scheduler rather than the cross-thread free.
void cross_thread(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  spsc_ring ring;
  std::atomic<bool> done{false};
  // Both CPUs are chosen before either thread is pinned: a thread starts with its creator's mask.
  cpu_set_t allowed;
  int producer_cpu = 0, consumer_cpu = 0;
  const bool pinned = two_allowed_cpus(&allowed, &producer_cpu, &consumer_cpu);
  if (pinned) pin_calling_thread(producer_cpu);
  std::thread consumer([&] {
    if (pinned) pin_calling_thread(consumer_cpu);
    void* p = nullptr;
    for (;;) {
      if (ring.pop(p)) {
        bench::mem_free(p);
      } else if (done.load(std::memory_order_acquire)) {
        while (ring.pop(p)) bench::mem_free(p);
        return;
      } else {
        // Yield instead of spinning: on a 2-core machine with any other load, a pure spin
        // starves the producer and the figure measures the scheduler.
        std::this_thread::yield();
      }
    }
  });
  for (auto _ : state) {
    void* p = bench::mem_alloc(size);
    static_cast<char*>(p)[0] = 1;  // touch it, as a real producer would fill the message
    while (!ring.push(p)) std::this_thread::yield();
  }
  done.store(true, std::memory_order_release);
  consumer.join();
  if (pinned) pthread_setaffinity_np(pthread_self(), sizeof allowed, &allowed);
  state.SetItemsProcessed(state.iterations());
}

// Two threads allocating and freeing at once (each its own blocks): shows lock or cache-line
// contention inside the allocator. Batches of 64 mixed sizes keep several blocks live per thread.
void contention(benchmark::State& state) {
  constexpr int kBatch = 64;
  bench::rng r(1234 + static_cast<uint64_t>(state.thread_index()));
  size_t sizes[kBatch];
  for (auto& s : sizes) s = 16 + r.below(static_cast<uint64_t>(state.range(0)));
  void* blocks[kBatch];
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) {
      blocks[i] = bench::mem_alloc(sizes[i]);
      benchmark::DoNotOptimize(blocks[i]);
    }
    for (void* p : blocks) bench::mem_free(p);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

}  // namespace

int main(int argc, char** argv) {
  for (int64_t s : kSizes) benchmark::RegisterBenchmark("pair", pair)->Arg(s);
  for (int64_t s : kSizes) benchmark::RegisterBenchmark("batch1000", batch1000)->Arg(s);
  benchmark::RegisterBenchmark("random_live", random_live)->Arg(1000)->Arg(100000);
  benchmark::RegisterBenchmark("cross_thread", cross_thread)->Arg(64)->Arg(1024)->UseRealTime();
  benchmark::RegisterBenchmark("contention", contention)->Arg(256)->Threads(2)->UseRealTime();
  benchmark::AddCustomContext("alloc_api", bench::kAllocApi);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
