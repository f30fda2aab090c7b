// Uses every public header of slabpool and checks that the right library variant is linked.
// Exits non-zero with a message on the first failed check.
#include <dlfcn.h>
#include <slabpool/slabpool.h>
#include <slabpool/pmr.hpp>
#include <slabpool/slabpool.hpp>
#include <slabpool/stl.hpp>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory_resource>
#include <string>
#include <vector>

namespace {
int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "consumer: FAILED: %s\n", what);
    ++failures;
  }
}
}  // namespace

int main() {
  void* p = sp_malloc(100);
  check(p != nullptr && sp_owns(p), "sp_malloc");
  std::memset(p, 1, 100);
  sp_free(p);
  slabpool::free(slabpool::malloc(64));

  std::pmr::vector<std::pmr::string> v(slabpool::get_resource());
  for (int i = 0; i < 100; ++i) v.emplace_back(static_cast<std::size_t>(i), 'x');
  check(sp_owns(v.data()) && v[99].size() == 99, "slabpool::get_resource()");

  {
    slabpool::arena_resource arena;
    std::pmr::map<int, int> m(&arena);
    for (int i = 0; i < 1000; ++i) m[i] = i * 2;
    check(m.at(999) == 1998 && arena.mapped_bytes() > 0, "slabpool::arena_resource");
  }

  std::vector<int, slabpool::allocator<int>> w(1000, 3);
  check(sp_owns(w.data()) && w[999] == 3, "slabpool::allocator");

  // Which object defines sp_malloc tells whether the shared or the static library was linked.
  Dl_info info{};
  const bool found = dladdr(reinterpret_cast<void*>(&sp_malloc), &info) != 0;
  const bool from_shared = found && info.dli_fname != nullptr &&
                           std::strstr(info.dli_fname, "libslabpool.so") != nullptr;
  check(from_shared == (CONSUMER_EXPECT_SHARED != 0), "linked library variant");

  if (failures == 0) std::puts("consumer: ok");
  return failures == 0 ? 0 : 1;
}
