// slabpool::allocator<T> with the standard containers.
#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <new>
#include <numeric>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "slabpool/slabpool.h"
#include "slabpool/stl.hpp"

namespace {

template <class T>
using sp_alloc = slabpool::allocator<T>;
using sp_string = std::basic_string<char, std::char_traits<char>, sp_alloc<char>>;

struct alignas(128) wide {
  std::int64_t value;
};

static_assert(std::allocator_traits<sp_alloc<int>>::is_always_equal::value);
static_assert(
    std::is_same_v<std::allocator_traits<sp_alloc<int>>::rebind_alloc<double>, sp_alloc<double>>);

TEST(StlAllocator, RebindAndEquality) {
  sp_alloc<int> a;
  sp_alloc<double> b(a);
  sp_alloc<int> c(b);
  EXPECT_TRUE(a == b);
  EXPECT_TRUE(a == c);
  EXPECT_FALSE(a != b);
  int* p = a.allocate(10);
  c.deallocate(p, 10);  // any instance frees what another allocated
}

TEST(StlAllocator, VectorAndString) {
  std::vector<std::int64_t, sp_alloc<std::int64_t>> v;
  for (std::int64_t i = 0; i < 100000; ++i) v.push_back(i);
  EXPECT_TRUE(sp_owns(v.data()));
  EXPECT_EQ(std::accumulate(v.begin(), v.end(), std::int64_t{0}), 99999ll * 100000 / 2);

  sp_string s;
  for (int i = 0; i < 1000; ++i) s += "slab";
  EXPECT_TRUE(sp_owns(s.data()));
  EXPECT_EQ(s.size(), 4000u);
  EXPECT_EQ(s.substr(3996), "slab");
}

TEST(StlAllocator, NodeContainers) {
  std::map<int, sp_string, std::less<int>, sp_alloc<std::pair<const int, sp_string>>> m;
  std::unordered_map<int, int, std::hash<int>, std::equal_to<int>,
                     sp_alloc<std::pair<const int, int>>>
      u;
  std::list<int, sp_alloc<int>> l;
  std::deque<int, sp_alloc<int>> d;
  for (int i = 0; i < 5000; ++i) {
    m.emplace(i, sp_string(static_cast<std::size_t>(i % 50), 'm'));
    u[i * 7] = i;
    l.push_back(i);
    d.push_front(i);
  }
  for (int i = 0; i < 5000; i += 2) {
    m.erase(i);
    u.erase(i * 7);
    d.pop_back();
  }
  l.remove_if([](int x) { return x % 3 == 0; });
  EXPECT_EQ(m.size(), 2500u);
  EXPECT_EQ(m.at(4999).size(), 4999u % 50);
  EXPECT_EQ(u.size(), 2500u);
  EXPECT_EQ(u.at(7 * 4999), 4999);
  EXPECT_EQ(l.size(), 5000u - 1667u);
  EXPECT_EQ(d.size(), 2500u);
  EXPECT_EQ(d.front(), 4999);
  EXPECT_TRUE(sp_owns(&*m.begin()));
  EXPECT_TRUE(sp_owns(&*u.begin()));
  EXPECT_TRUE(sp_owns(&*l.begin()));
  EXPECT_TRUE(sp_owns(&d.front()));
}

TEST(StlAllocator, OverAlignedTypes) {
  std::vector<wide, sp_alloc<wide>> v;
  for (int i = 0; i < 1000; ++i) {
    v.push_back(wide{i});
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(v.data()) % alignof(wide), 0u);
  }
  std::list<wide, sp_alloc<wide>> l(100);
  for (const wide& w : l) EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&w) % alignof(wide), 0u);
  EXPECT_TRUE(sp_owns(v.data()));
  EXPECT_EQ(v[999].value, 999);
}

TEST(StlAllocator, AllocateSharedRebindsToControlBlock) {
  auto p = std::allocate_shared<std::int64_t>(sp_alloc<std::int64_t>(), 42);
  EXPECT_EQ(*p, 42);
  EXPECT_TRUE(sp_owns(p.get()));
}

TEST(StlAllocator, ImpossibleSizesThrowBadAlloc) {
  EXPECT_THROW((void)sp_alloc<std::int64_t>().allocate(SIZE_MAX / 2), std::bad_alloc);  // overflow
  EXPECT_THROW((void)sp_alloc<char>().allocate(SIZE_MAX / 2), std::bad_alloc);          // no memory
  EXPECT_THROW((void)sp_alloc<wide>().allocate(SIZE_MAX / 256), std::bad_alloc);
  std::vector<int, sp_alloc<int>> v;
  EXPECT_THROW(v.reserve(v.max_size()), std::bad_alloc);
}

TEST(StlAllocator, FreedOnAnotherThread) {
  auto* v = new std::vector<int, sp_alloc<int>>(100000, 7);
  std::thread t([v] { delete v; });
  t.join();
  std::vector<int, sp_alloc<int>> w(100000, 8);  // memory still sound afterwards
  EXPECT_EQ(w.back(), 8);
}

}  // namespace
