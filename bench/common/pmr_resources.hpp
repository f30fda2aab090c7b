// The std::pmr resources the benchmarks compare, behind one factory so the micro suites and the
// instruction counter build exactly the same objects. slabpool's resources are compiled in only
// when bench/CMakeLists.txt found slabpool/pmr.hpp (SLABPOOL_BENCH_HAVE_PMR); mimalloc is reached
// through dlopen so that linking it does not replace malloc for the whole benchmark process.
#pragma once

#include <dlfcn.h>

#include <cstddef>
#include <memory>
#include <memory_resource>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#if defined(SLABPOOL_BENCH_HAVE_PMR)
#include "slabpool/pmr.hpp"
#endif

namespace bench {

// A memory_resource over mimalloc's aligned/sized API, the "resource over mimalloc" of issue 5.
// RTLD_LOCAL keeps mimalloc's own malloc override out of the global symbol scope: everything else
// in the process (new_delete_resource, the pools' upstream) stays on the allocator under test.
class mimalloc_resource final : public std::pmr::memory_resource {
 public:
  // Returns the shared instance, or nullptr when libmimalloc.so.2 cannot be loaded.
  static mimalloc_resource* instance() {
    static mimalloc_resource* const r = [] {
      void* lib = dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
      if (lib == nullptr) return static_cast<mimalloc_resource*>(nullptr);
      auto alloc = reinterpret_cast<alloc_fn>(dlsym(lib, "mi_malloc_aligned"));
      auto free_size = reinterpret_cast<free_fn>(dlsym(lib, "mi_free_size"));
      if (alloc == nullptr || free_size == nullptr) return static_cast<mimalloc_resource*>(nullptr);
      return new mimalloc_resource(alloc, free_size);  // lives for the process, like mimalloc
    }();
    return r;
  }

 private:
  using alloc_fn = void* (*)(std::size_t, std::size_t);
  using free_fn = void (*)(void*, std::size_t);
  mimalloc_resource(alloc_fn a, free_fn f) : alloc_(a), free_size_(f) {}

  void* do_allocate(std::size_t bytes, std::size_t align) override {
    void* p = alloc_(bytes, align);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t) override { free_size_(p, bytes); }
  bool do_is_equal(const memory_resource& other) const noexcept override { return this == &other; }

  alloc_fn alloc_;
  free_fn free_size_;
};

// A memory_resource over jemalloc's mallocx/sdallocx. jemalloc cannot be dlopen'ed (it needs static
// TLS), so this resource exists only when jemalloc is already in the process, i.e. LD_PRELOADed:
// scripts/bench runs the jemalloc rows of the pmr suites that way.
class jemalloc_resource final : public std::pmr::memory_resource {
 public:
  // Returns the shared instance, or nullptr when jemalloc is not loaded.
  static jemalloc_resource* instance() {
    static jemalloc_resource* const r = [] {
      auto alloc = reinterpret_cast<alloc_fn>(dlsym(RTLD_DEFAULT, "mallocx"));
      auto free_size = reinterpret_cast<free_fn>(dlsym(RTLD_DEFAULT, "sdallocx"));
      if (alloc == nullptr || free_size == nullptr) return static_cast<jemalloc_resource*>(nullptr);
      return new jemalloc_resource(alloc, free_size);
    }();
    return r;
  }

 private:
  using alloc_fn = void* (*)(std::size_t, int);
  using free_fn = void (*)(void*, std::size_t, int);
  jemalloc_resource(alloc_fn a, free_fn f) : alloc_(a), free_size_(f) {}

  // jemalloc aligns to 16 except for tiny classes; ask for alignment (MALLOCX_LG_ALIGN) only when
  // that default does not cover it. sdallocx must receive the same flags.
  static int flags(std::size_t bytes, std::size_t align) {
    if (align <= alignof(std::max_align_t) && bytes >= align) return 0;
    int lg = 0;
    while ((std::size_t{1} << lg) < align) ++lg;
    return lg;
  }
  void* do_allocate(std::size_t bytes, std::size_t align) override {
    void* p = alloc_(bytes == 0 ? 1 : bytes, flags(bytes, align));
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t align) override {
    free_size_(p, bytes == 0 ? 1 : bytes, flags(bytes, align));
  }
  bool do_is_equal(const memory_resource& other) const noexcept override { return this == &other; }

  alloc_fn alloc_;
  free_fn free_size_;
};

#if defined(SLABPOOL_BENCH_HAVE_PMR)
// get_resource() may hand out a pointer or a reference; accept both.
inline std::pmr::memory_resource* as_ptr(std::pmr::memory_resource* r) {
  return r;
}
inline std::pmr::memory_resource* as_ptr(std::pmr::memory_resource& r) {
  return &r;
}
#endif

// One resource under test. reset() gives back everything the resource holds where that is its
// normal way of use (monotonic and arena); pools and process-wide resources ignore it.
class resource_slot {
 public:
  virtual ~resource_slot() = default;
  virtual std::pmr::memory_resource* get() = 0;
  virtual void reset() {}
  // False when a resource must not be shared between threads.
  virtual bool thread_safe() const { return true; }
};

namespace detail {

class global_slot final : public resource_slot {
 public:
  explicit global_slot(std::pmr::memory_resource* r) : r_(r) {}
  std::pmr::memory_resource* get() override { return r_; }

 private:
  std::pmr::memory_resource* r_;
};

template <typename Resource, bool kThreadSafe, bool kReset>
class owned_slot final : public resource_slot {
 public:
  std::pmr::memory_resource* get() override { return &r_; }
  void reset() override {
    if constexpr (kReset) r_.release();
  }
  bool thread_safe() const override { return kThreadSafe; }

 private:
  Resource r_;
};

}  // namespace detail

// Names accepted by make_resource, in the order reports list them.
inline std::vector<std::string> resource_names() {
  std::vector<std::string> names;
#if defined(SLABPOOL_BENCH_HAVE_PMR)
  names.push_back("slabpool");
  names.push_back("slabpool_arena");
#endif
  names.insert(names.end(), {"sync_pool", "unsync_pool", "monotonic", "new_delete"});
  if (mimalloc_resource::instance() != nullptr) names.push_back("mimalloc");
  if (jemalloc_resource::instance() != nullptr) names.push_back("jemalloc");
  return names;
}

// Builds the named resource; nullptr for an unknown or unavailable name.
inline std::unique_ptr<resource_slot> make_resource(std::string_view name) {
  using namespace std::pmr;
#if defined(SLABPOOL_BENCH_HAVE_PMR)
  if (name == "slabpool")
    return std::make_unique<detail::global_slot>(as_ptr(slabpool::get_resource()));
  if (name == "slabpool_arena") {
    return std::make_unique<detail::owned_slot<slabpool::arena_resource, false, true>>();
  }
#endif
  if (name == "sync_pool") {
    return std::make_unique<detail::owned_slot<synchronized_pool_resource, true, false>>();
  }
  if (name == "unsync_pool") {
    return std::make_unique<detail::owned_slot<unsynchronized_pool_resource, false, false>>();
  }
  if (name == "monotonic") {
    return std::make_unique<detail::owned_slot<monotonic_buffer_resource, false, true>>();
  }
  if (name == "new_delete") return std::make_unique<detail::global_slot>(new_delete_resource());
  if (name == "mimalloc" && mimalloc_resource::instance() != nullptr) {
    return std::make_unique<detail::global_slot>(mimalloc_resource::instance());
  }
  if (name == "jemalloc" && jemalloc_resource::instance() != nullptr) {
    return std::make_unique<detail::global_slot>(jemalloc_resource::instance());
  }
  return nullptr;
}

}  // namespace bench
