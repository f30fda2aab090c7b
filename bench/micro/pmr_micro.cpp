// Google Benchmark suites for std::pmr memory resources, all in one process (no LD_PRELOAD: the
// resources themselves are what is compared). Calls go through std::pmr::memory_resource*, so the
// virtual dispatch a pmr user pays is part of every figure. Containers live in pmr_containers.cpp.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "pmr_resources.hpp"

void register_container_benchmarks();  // pmr_containers.cpp

namespace {

constexpr int64_t kSizes[] = {16, 64, 256, 1024, 4096};

// The monotonic and arena resources never (or not necessarily) reuse memory; giving it back every
// kResetEvery operations keeps their footprint bounded. The amortised cost of release() is part of
// their figure, as it is part of using them.
constexpr int64_t kResetEvery = 4096;

void pmr_pair(benchmark::State& state, std::string name) {
  auto slot = bench::make_resource(name);
  std::pmr::memory_resource* r = slot->get();
  const auto size = static_cast<size_t>(state.range(0));
  int64_t n = 0;
  for (auto _ : state) {
    void* p = r->allocate(size, alignof(std::max_align_t));
    benchmark::DoNotOptimize(p);
    r->deallocate(p, size, alignof(std::max_align_t));
    if (++n == kResetEvery) {
      slot->reset();
      n = 0;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void pmr_batch(benchmark::State& state, std::string name) {
  auto slot = bench::make_resource(name);
  std::pmr::memory_resource* r = slot->get();
  const auto size = static_cast<size_t>(state.range(0));
  std::vector<void*> blocks(1000);
  for (auto _ : state) {
    for (auto& p : blocks) {
      p = r->allocate(size, alignof(std::max_align_t));
      benchmark::DoNotOptimize(p);
    }
    for (void* p : blocks) r->deallocate(p, size, alignof(std::max_align_t));
    slot->reset();
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}

// Two threads sharing one resource (only for thread-safe resources): the case where
// synchronized_pool_resource takes its mutex on every call.
std::unique_ptr<bench::resource_slot> g_shared;

void pmr_pair_shared(benchmark::State& state, std::string name) {
  if (state.thread_index() == 0) g_shared = bench::make_resource(name);
  const auto size = static_cast<size_t>(state.range(0));
  constexpr int kBatch = 16;  // a few live blocks per thread, as in a real request handler
  void* blocks[kBatch];
  for (auto _ : state) {
    std::pmr::memory_resource* r = g_shared->get();
    for (auto& p : blocks) {
      p = r->allocate(size, alignof(std::max_align_t));
      benchmark::DoNotOptimize(p);
    }
    for (void* p : blocks) r->deallocate(p, size, alignof(std::max_align_t));
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  if (state.thread_index() == 0) g_shared.reset();
}

}  // namespace

int main(int argc, char** argv) {
  for (const std::string& name : bench::resource_names()) {
    auto* b = benchmark::RegisterBenchmark(("pmr_pair/" + name).c_str(), pmr_pair, name);
    for (int64_t s : kSizes) b->Arg(s);
    b = benchmark::RegisterBenchmark(("pmr_batch1000/" + name).c_str(), pmr_batch, name);
    for (int64_t s : kSizes) b->Arg(s);
    if (bench::make_resource(name)->thread_safe()) {
      benchmark::RegisterBenchmark(("pmr_shared/" + name).c_str(), pmr_pair_shared, name)
          ->Arg(64)
          ->Threads(2)
          ->UseRealTime();
    }
  }
  register_container_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
