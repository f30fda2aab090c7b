// Arena per request (issue 13): the canonical std::pmr use. Each benchmark iteration is one
// request that builds its containers on a resource, drops them and gives the memory back the way
// that resource is meant to be used: an arena or monotonic buffer is released (or constructed and
// destroyed) per request, a pool is released, the process-wide resources just get every block
// back. Time per request and minor page faults per request (getrusage) are reported.
//
// Shapes of a request:
//   map  an unordered_map<int, string> of 200 entries (strings of 24-64 characters, past the
//        small-string buffer, so each allocates) and a vector<int> grown to 300 elements
//   mix  100 strings grown by appends in a vector, one response body appended from them (a few
//        KiB, reallocating as it grows), and a vector<int> grown to 300 elements
// Variants: arena_release (slabpool::arena_resource kept, release() per request),
// arena_per_request (constructed per request), monotonic_release, unsync_pool_release
// (std::pmr, kept, release() per request), slabpool (slabpool::get_resource()), new_delete
// (std::pmr::new_delete_resource()), std (the same request with std::string/std::vector and the
// global operator new: what the malloc under test gives a program that does not use pmr).
// Names: request/<shape>/<variant>. Run in-process; scripts/bench also runs it under each
// allocator's LD_PRELOAD, which moves new_delete, std and the std::pmr upstreams.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <memory_resource>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bench_util.hpp"

#if defined(SLABPOOL_BENCH_HAVE_PMR)
#include "slabpool/pmr.hpp"
#endif

namespace {

constexpr int kMapEntries = 200;
constexpr int kVectorElems = 300;
constexpr int kMixFields = 100;
constexpr std::string_view kText =
    "the quick brown fox jumps over the lazy dog, then again over the lazy dog's brother";
static_assert(kText.size() >= 64);

struct pmr_types {
  using string = std::pmr::string;
  template <typename T>
  using vector = std::pmr::vector<T>;
  using map = std::pmr::unordered_map<int, string>;
  template <typename C>
  static C make(std::pmr::memory_resource* r) {
    return C(r);
  }
};

struct std_types {
  using string = std::string;
  template <typename T>
  using vector = std::vector<T>;
  using map = std::unordered_map<int, string>;
  template <typename C>
  static C make(std::pmr::memory_resource*) {
    return C();
  }
};

// One request of the map shape; returns something derived from every container so that nothing
// is optimised away.
template <typename T>
size_t request_map(std::pmr::memory_resource* r, bench::rng& g) {
  auto m = T::template make<typename T::map>(r);
  auto v = T::template make<typename T::template vector<int>>(r);
  for (int i = 0; i < kMapEntries; ++i) {
    m.try_emplace(static_cast<int>(g.next()), kText.data(), 24 + g.below(41));
  }
  for (int i = 0; i < kVectorElems; ++i) v.push_back(i);
  benchmark::DoNotOptimize(v.data());
  return m.size() + v.size();
}

// One request of the mix shape: fields built by appends, a body assembled from them.
template <typename T>
size_t request_mix(std::pmr::memory_resource* r, bench::rng& g) {
  auto fields = T::template make<typename T::template vector<typename T::string>>(r);
  auto body = T::template make<typename T::string>(r);
  auto ids = T::template make<typename T::template vector<int>>(r);
  for (int i = 0; i < kMixFields; ++i) {
    fields.emplace_back(kText.data(), 8 + g.below(8));
    auto& f = fields.back();
    f.append(": ");
    f.append(kText.data(), 16 + g.below(41));
  }
  for (const auto& f : fields) {
    body.append(f);
    body.push_back('\n');
  }
  for (int i = 0; i < kVectorElems; ++i) ids.push_back(i);
  benchmark::DoNotOptimize(body.data());
  benchmark::DoNotOptimize(ids.data());
  return body.size() + ids.size();
}

using request_fn = size_t (*)(std::pmr::memory_resource*, bench::rng&);

long minor_faults() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

// Runs the loop with `one(g)` as the body of an iteration and sets the shared counters.
template <typename Body>
void run_requests(benchmark::State& state, Body&& one) {
  bench::rng g(0x5eed);
  size_t sink = 0;
  const long f0 = minor_faults();
  for (auto _ : state) sink += one(g);
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(state.iterations());
  state.counters["minflt_per_req"] = benchmark::Counter(static_cast<double>(minor_faults() - f0),
                                                        benchmark::Counter::kAvgIterations);
}

// A resource kept across requests, with release() after each (monotonic, pool, arena).
template <typename Resource>
void kept_release(benchmark::State& state, request_fn fn) {
  Resource res;
  run_requests(state, [&](bench::rng& g) {
    size_t n = fn(&res, g);
    res.release();
    return n;
  });
}

// A resource constructed and destroyed per request.
template <typename Resource>
void per_request(benchmark::State& state, request_fn fn) {
  run_requests(state, [&](bench::rng& g) {
    Resource res;
    return fn(&res, g);
  });
}

// A process-wide resource: the containers give every block back as they die.
void global(benchmark::State& state, request_fn fn, std::pmr::memory_resource* r) {
  run_requests(state, [&](bench::rng& g) { return fn(r, g); });
}

#if defined(SLABPOOL_BENCH_HAVE_PMR)
// get_resource() may hand out a pointer or a reference; accept both.
[[maybe_unused]] std::pmr::memory_resource* slabpool_global(std::pmr::memory_resource* r) {
  return r;
}
[[maybe_unused]] std::pmr::memory_resource* slabpool_global(std::pmr::memory_resource& r) {
  return &r;
}
#endif

void reg(const std::string& shape, const char* variant, void (*fn)(benchmark::State&, request_fn),
         request_fn body) {
  benchmark::RegisterBenchmark(("request/" + shape + "/" + variant).c_str(), fn, body)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  struct shape {
    std::string name;
    request_fn pmr, plain;
  };
  const shape shapes[] = {
      {"map", request_map<pmr_types>, request_map<std_types>},
      {"mix", request_mix<pmr_types>, request_mix<std_types>},
  };
  for (const shape& s : shapes) {
#if defined(SLABPOOL_BENCH_HAVE_PMR)
    reg(s.name, "arena_release", kept_release<slabpool::arena_resource>, s.pmr);
    reg(s.name, "arena_per_request", per_request<slabpool::arena_resource>, s.pmr);
    benchmark::RegisterBenchmark(("request/" + s.name + "/slabpool").c_str(), global, s.pmr,
                                 slabpool_global(slabpool::get_resource()))
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
#endif
    reg(s.name, "monotonic_release", kept_release<std::pmr::monotonic_buffer_resource>, s.pmr);
    reg(s.name, "unsync_pool_release", kept_release<std::pmr::unsynchronized_pool_resource>, s.pmr);
    benchmark::RegisterBenchmark(("request/" + s.name + "/new_delete").c_str(), global, s.pmr,
                                 std::pmr::new_delete_resource())
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("request/" + s.name + "/std").c_str(), global, s.plain,
                                 std::pmr::new_delete_resource())
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
