// Object pools (issue 7): slabpool::object_pool<T> get+put against new/delete of the same T and
// against the classic hand-written pool (a std::mutex around a free list), for a 64 B object and
// a 4 KiB object that is reset before reuse, on 1 and 2 threads sharing one pool.
// The third shape, 4KiB_zeroed, is Go's: a 4 KiB buffer cleared entirely before reuse. Pools:
// object_pool (hooks as std::function), object_pool_typed (hooks stored by type, inlined),
// go_like (sync.Pool's per-P fast path with inlined zeroing, bench/common/go_like_pool.hpp) and
// mutex_freelist.
//
// scripts/bench runs the new_delete cases under each allocator's LD_PRELOAD (glibc = none) and
// the pool cases once in-process: object_pool lives in slabpool memory whatever is preloaded.
// Every variant does the same work per iteration: obtain a ready object, write to it, give it
// back. "Ready" means what a fresh object looks like: the constructor (new/delete, misses) and the
// reset hook (pools, on put) clear the same bytes, so the comparison is about reuse alone.
#include <benchmark/benchmark.h>

#include <slabpool/pool.hpp>

#include "go_like_pool.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

struct small_object {  // 64 B: a request header, a parsed message
  small_object() { clear(); }
  void clear() { std::memset(fields, 0, sizeof(fields)); }
  std::uint64_t fields[8];
};
static_assert(sizeof(small_object) == 64);

// Clears the first N bytes at `p` with 16-byte stores: the code Go's compiler emits for
// `p.length = 0; p.header = [248]byte{}` (MOVUPS, then DUFFZERO's MOVUPS run). Written out because
// GCC's generic x86-64 tuning expands `length = 0; memset(header, 0, 248)` into `rep stosq`,
// whose start-up alone cost ~15-20 ns per clear on the AMD EPYC bench machine, against ~6 ns for
// the same 256 bytes as 16-byte stores (or as a call to glibc's memset, GCC's own choice with
// -march=native). Until 2026-11-29 the 4KiB_reset rows thus timed rep stosq in C++ against
// MOVUPS in Go: a compiler's code for the user's hook, the same in every C++ row, not pool work.
// The empty asm after each store keeps GCC from merging the stores back into one memset.
template <std::size_t N>
void clear_front(void* p) noexcept {
  static_assert(N % 16 == 0);
  auto* bytes = static_cast<unsigned char*>(p);
  for (std::size_t i = 0; i < N; i += 16) {
    const std::uint64_t zero[2] = {0, 0};
    std::memcpy(bytes + i, zero, sizeof(zero));
    asm volatile("" : : "r"(bytes) : "memory");
  }
}

struct large_object {  // 4 KiB: a message with an inline buffer; reset clears its header area
  large_object() { clear(); }
  void clear() { clear_front<256>(this); }  // length and header, like Go's shape
  std::size_t length;
  char header[248];
  char body[4096 - 256];
};
static_assert(sizeof(large_object) == 4096 && offsetof(large_object, body) == 256);
static_assert(std::is_trivially_copyable_v<large_object> &&
              std::is_standard_layout_v<large_object>);

struct zeroed_buffer {  // 4 KiB: Go's []byte buffer, cleared whole before it is reused
  zeroed_buffer() { clear(); }
  void clear() { std::memset(bytes, 0, sizeof(bytes)); }
  unsigned char bytes[4096];
};
static_assert(sizeof(zeroed_buffer) == 4096);

template <class T>
struct clear_hook {  // the reset hook as a type: inlinable
  void operator()(T& t) const noexcept { t.clear(); }
};

template <class T>
void touch(T* p, std::size_t i) {
  reinterpret_cast<volatile char*>(p)[i & 63] = static_cast<char>(i);
  benchmark::DoNotOptimize(p);
}

template <class T>
slabpool::object_pool<T>& shared_pool() {
  static slabpool::object_pool<T> pool({}, [](T& t) { t.clear(); });
  return pool;
}

// get, touch, put back: the loop every object_pool variant runs.
template <class Pool>
void get_touch_put(benchmark::State& state, Pool& pool) {
  std::size_t i = 0;
  for (auto _ : state) {
    auto h = pool.get();
    touch(h.get(), ++i);
  }
  state.SetItemsProcessed(state.iterations());
}

template <class T>
void object_pool(benchmark::State& state) {
  get_touch_put(state, shared_pool<T>());
}

template <class T>
slabpool::object_pool<T, slabpool::default_factory<T>, clear_hook<T>>& typed_pool() {
  static auto pool = slabpool::make_object_pool<T>(slabpool::default_factory<T>{}, clear_hook<T>{});
  return pool;
}

template <class T>
void object_pool_typed(benchmark::State& state) {
  get_touch_put(state, typed_pool<T>());
}

template <class T>
void go_like(benchmark::State& state) {
  using pool = bench::go_like_pool<T, clear_hook<T>>;
  std::size_t i = 0;
  for (auto _ : state) {
    T* p = pool::get();
    touch(p, ++i);
    pool::put(p);
  }
  state.SetItemsProcessed(state.iterations());
}

template <class T>
void new_delete(benchmark::State& state) {
  std::size_t i = 0;
  for (auto _ : state) {
    T* p = new T;
    touch(p, ++i);
    delete p;
  }
  state.SetItemsProcessed(state.iterations());
}

// The hand-written pool most code bases have: one lock, one vector of free objects.
template <class T>
class mutex_freelist {
 public:
  T* get() {
    {
      std::lock_guard guard(lock_);
      if (!free_.empty()) {
        T* p = free_.back();
        free_.pop_back();
        return p;
      }
    }
    return new T;
  }
  void put(T* p) {
    p->clear();
    std::lock_guard guard(lock_);
    free_.push_back(p);
  }
  ~mutex_freelist() {
    for (T* p : free_) delete p;
  }

 private:
  std::mutex lock_;
  std::vector<T*> free_;
};

template <class T>
void mutex_pool(benchmark::State& state) {
  static mutex_freelist<T> pool;
  std::size_t i = 0;
  for (auto _ : state) {
    T* p = pool.get();
    touch(p, ++i);
    pool.put(p);
  }
  state.SetItemsProcessed(state.iterations());
}

template <class T>
void register_object(const char* object) {
  const std::string base = std::string("pool/") + object + "/";
  for (auto [impl, fn] :
       {std::pair{"object_pool", &object_pool<T>},
        std::pair{"object_pool_typed", &object_pool_typed<T>}, std::pair{"go_like", &go_like<T>},
        std::pair{"mutex_freelist", &mutex_pool<T>}, std::pair{"new_delete", &new_delete<T>}}) {
    benchmark::RegisterBenchmark((base + impl).c_str(), fn)->Threads(1)->Threads(2)->UseRealTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_object<small_object>("64B");
  register_object<large_object>("4KiB_reset");
  register_object<zeroed_buffer>("4KiB_zeroed");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
