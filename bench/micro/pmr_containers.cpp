// std::pmr containers over each resource: the allocation patterns of real code (geometric vector
// growth, node containers, short strings) rather than isolated pairs. Every iteration builds the
// container, destroys it, and resets the resource where that is how it is used (monotonic, arena).
#include <benchmark/benchmark.h>

#include <list>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench_util.hpp"
#include "pmr_resources.hpp"

namespace {

// Each returns the number of container operations it performed.
using bench_fn = int64_t (*)(std::pmr::memory_resource*, int64_t);

// Push back n ints into a vector that grows geometrically (no reserve).
int64_t vector_growth(std::pmr::memory_resource* r, int64_t n) {
  std::pmr::vector<int> v(r);
  for (int64_t i = 0; i < n; ++i) v.push_back(static_cast<int>(i));
  benchmark::DoNotOptimize(v.data());
  return n;
}

// Insert n keys, then clear(): the "unordered_map insert+clear".
int64_t unordered_map_insert_clear(std::pmr::memory_resource* r, int64_t n) {
  std::pmr::unordered_map<int64_t, int64_t> m(r);
  for (int64_t i = 0; i < n; ++i) m.emplace(i * 7919, i);
  benchmark::DoNotOptimize(m.size());
  m.clear();
  return n;
}

// A list used as a queue: push n, pop half from the front, push n/2 more, destroy.
int64_t list_queue(std::pmr::memory_resource* r, int64_t n) {
  std::pmr::list<int64_t> l(r);
  for (int64_t i = 0; i < n; ++i) l.push_back(i);
  for (int64_t i = 0; i < n / 2; ++i) l.pop_front();
  for (int64_t i = 0; i < n / 2; ++i) l.push_back(i);
  benchmark::DoNotOptimize(l.back());
  return 2 * n;
}

// Replace random slots of a 256-string table n times with strings of 20-60 characters (past the
// 15-character small-string buffer, so every one allocates).
int64_t string_churn(std::pmr::memory_resource* r, int64_t n) {
  static const std::string kText(64, 'x');
  std::pmr::vector<std::pmr::string> table(256, r);
  bench::rng g(7);
  for (int64_t i = 0; i < n; ++i) {
    auto& s = table[g.below(table.size())];
    s.assign(kText, 0, 20 + g.below(41));
  }
  benchmark::DoNotOptimize(table.data());
  return n;
}

// Insert n pseudo-random keys into an ordered map, then destroy it.
int64_t map_insert(std::pmr::memory_resource* r, int64_t n) {
  std::pmr::map<uint64_t, int64_t> m(r);
  bench::rng g(11);
  for (int64_t i = 0; i < n; ++i) m.emplace(g.next(), i);
  benchmark::DoNotOptimize(m.size());
  return n;
}

void run(benchmark::State& state, std::string name, bench_fn fn) {
  auto slot = bench::make_resource(name);
  int64_t items = 0;
  for (auto _ : state) {
    items += fn(slot->get(), state.range(0));
    slot->reset();
  }
  state.SetItemsProcessed(items);
}

}  // namespace

void register_container_benchmarks() {
  struct entry {
    const char* suite;
    bench_fn fn;
    std::vector<int64_t> sizes;
  };
  const entry entries[] = {
      {"pmr_vector", vector_growth, {1000, 100000}},
      {"pmr_unordered_map", unordered_map_insert_clear, {10000, 1000000}},
      {"pmr_list", list_queue, {10000}},
      {"pmr_string", string_churn, {10000}},
      {"pmr_map", map_insert, {10000}},
  };
  for (const std::string& name : bench::resource_names()) {
    for (const entry& e : entries) {
      auto* b = benchmark::RegisterBenchmark((std::string(e.suite) + "/" + name).c_str(), run, name,
                                             e.fn);
      for (int64_t n : e.sizes) b->Arg(n);
      b->Unit(benchmark::kMicrosecond);
    }
  }
}
