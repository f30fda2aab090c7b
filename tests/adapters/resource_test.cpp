// slabpool::resource and get_resource(): thread safety, alignment, equality, failure, lifetime.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory_resource>
#include <mutex>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "slabpool/pmr.hpp"
#include "slabpool/slabpool.h"

namespace {

struct block {
  unsigned char* p;
  std::size_t bytes;
  std::size_t alignment;
};

unsigned char pattern_of(const block& b) {
  return static_cast<unsigned char>((reinterpret_cast<std::uintptr_t>(b.p) >> 4) ^ b.bytes);
}

bool pattern_intact(const block& b) {
  const unsigned char want = pattern_of(b);
  for (std::size_t i = 0; i < b.bytes; ++i) {
    if (b.p[i] != want) return false;
  }
  return true;
}

TEST(Resource, SingletonIsStableAndEqualToEveryInstance) {
  slabpool::resource* r = slabpool::get_resource();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r, slabpool::get_resource());
  slabpool::resource other;
  EXPECT_TRUE(*r == other);
  EXPECT_FALSE(*r == *std::pmr::new_delete_resource());
  slabpool::arena_resource arena;
  EXPECT_FALSE(*r == arena);

  // Interchangeable: memory from one instance goes back through another.
  void* p = other.allocate(100);
  EXPECT_TRUE(sp_owns(p));
  r->deallocate(p, 100);
}

TEST(Resource, AlignmentSweep) {
  std::pmr::memory_resource* r = slabpool::get_resource();
  for (std::size_t alignment = 1; alignment <= SP_MAX_ALIGNMENT; alignment *= 2) {
    for (std::size_t bytes :
         {std::size_t{1}, std::size_t{24}, alignment, alignment * 3 + 8, std::size_t{200000}}) {
      void* p = r->allocate(bytes, alignment);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignment, 0u)
          << bytes << " bytes at " << alignment;
      EXPECT_GE(sp_usable_size(p), bytes);
      std::memset(p, 0x5a, bytes);
      r->deallocate(p, bytes, alignment);
    }
  }
}

TEST(Resource, ImpossibleRequestsThrowBadAlloc) {
  std::pmr::memory_resource* r = slabpool::get_resource();
  EXPECT_THROW((void)r->allocate(SIZE_MAX / 2), std::bad_alloc);
  EXPECT_THROW((void)r->allocate(SIZE_MAX), std::bad_alloc);
  EXPECT_THROW((void)r->allocate(SIZE_MAX / 2, 64), std::bad_alloc);
  EXPECT_THROW((void)r->allocate(16, SP_MAX_ALIGNMENT * 2), std::bad_alloc);
  // Still fine afterwards.
  void* p = r->allocate(64);
  r->deallocate(p, 64);
}

// Several threads allocate, pattern-fill and hand blocks to each other; every block is checked
// and freed by whichever thread takes it, so about half the frees cross threads.
TEST(Resource, ThreadsShareAndFreeAcrossThreads) {
  constexpr int kThreads = 4;
  constexpr int kIterations = 30000;
  std::pmr::memory_resource* r = slabpool::get_resource();
  std::mutex exchange_lock;
  std::vector<block> exchange;
  std::atomic<int> corrupted{0};
  std::atomic<long> cross_frees{0};

  auto worker = [&](unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<block> mine;
    auto release = [&](const block& b) {
      if (!pattern_intact(b)) corrupted.fetch_add(1);
      r->deallocate(b.p, b.bytes, b.alignment);
    };
    for (int i = 0; i < kIterations; ++i) {
      const std::size_t bytes = 1 + rng() % (rng() % 8 == 0 ? 20000 : 300);
      const std::size_t alignment = rng() % 16 == 0 ? 256 : alignof(std::max_align_t);
      block b{static_cast<unsigned char*>(r->allocate(bytes, alignment)), bytes, alignment};
      std::memset(b.p, pattern_of(b), bytes);
      if (rng() % 2 == 0) {
        std::lock_guard<std::mutex> guard(exchange_lock);
        exchange.push_back(b);
      } else {
        mine.push_back(b);
      }
      if (rng() % 3 == 0) {
        block taken{};
        {
          std::lock_guard<std::mutex> guard(exchange_lock);
          if (!exchange.empty()) {
            taken = exchange.back();
            exchange.pop_back();
          }
        }
        if (taken.p != nullptr) {
          release(taken);
          cross_frees.fetch_add(1);
        }
      }
      if (mine.size() > 500) {
        for (const block& m : mine) release(m);
        mine.clear();
      }
    }
    for (const block& m : mine) release(m);
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, 1000u + static_cast<unsigned>(t));
  for (auto& t : threads) t.join();
  for (const block& b : exchange) {
    if (!pattern_intact(b)) corrupted.fetch_add(1);
    r->deallocate(b.p, b.bytes, b.alignment);
  }
  EXPECT_EQ(corrupted.load(), 0);
  EXPECT_GT(cross_frees.load(), kIterations / 10);
}

// A pmr container built on one thread and destroyed on another.
TEST(Resource, ContainerDestroyedOnAnotherThread) {
  auto* v = new std::pmr::vector<std::pmr::string>(slabpool::get_resource());
  std::thread producer([v] {
    for (int i = 0; i < 1000; ++i)
      v->emplace_back(std::string(static_cast<std::size_t>(i % 90), 'x'));
  });
  producer.join();
  ASSERT_EQ(v->size(), 1000u);
  EXPECT_EQ((*v)[89].size(), 89u);
  EXPECT_TRUE(sp_owns(v->data()));
  std::thread consumer([v] { delete v; });
  consumer.join();
}

// Runs in a fresh process ("threadsafe" death tests re-execute the binary): an object constructed
// before the first get_resource() call is destroyed after it at exit, and still allocates then.
// With a resource that died at static destruction this would call a destroyed object and crash.
struct uses_resource_at_exit {
  ~uses_resource_at_exit() {
    std::pmr::vector<std::pmr::string> v(slabpool::get_resource());
    for (int i = 0; i < 100; ++i) v.emplace_back(200, 'z');
    if (v[99].size() != 200) std::_Exit(3);
  }
};

TEST(ResourceDeathTest, UsableDuringStaticDestruction) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        static uses_resource_at_exit user;
        std::pmr::vector<int> v({1, 2, 3}, slabpool::get_resource());
        std::exit(v.size() == 3 ? 0 : 2);
      },
      testing::ExitedWithCode(0), "");
}

// Checked mode is chosen before the process's first slabpool allocation, so the tests below run
// their allocations in a re-executed child ("threadsafe" death tests), which picks the mode
// first; the parent process and the other tests keep the mode they run in.
void choose_checked_mode(long long on) {
  if (sp_option_set(SP_OPTION_CHECKED, on) != 0) {
    std::fputs("checked mode could not be chosen: slabpool allocated before the test\n", stderr);
    std::_Exit(3);
  }
}

struct sized_case {
  std::size_t bytes;
  std::size_t alignment;
  std::size_t wrong_bytes;  // what the faulty deallocate passes
};

// One case per way a block is made: the inline fast path, the class table above 1 KiB, an
// aligned class, a large block, and an alignment above a unit (a large block placed on it);
// wrong sizes below and above the real one.
constexpr sized_case kSizedCases[] = {
    {100, 16, 60},
    {100, 8, 200},
    {5000, 16, 4096},
    {100, 64, 60},
    {5000, 4096, 5008},
    {300000, 16, 299999},
    {100, std::size_t{1} << 20, 99},
};

std::string wrong_size_report(const sized_case& c) {
  return "slabpool: free\\(0x[0-9a-f]+\\): sized free with size " + std::to_string(c.wrong_bytes) +
         ", but " + std::to_string(c.bytes) + " bytes were allocated";
}

TEST(ResourceCheckedDeathTest, WrongSizeDeallocateIsReported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (const sized_case& c : kSizedCases) {
    EXPECT_DEATH(
        {
          choose_checked_mode(1);
          std::pmr::memory_resource* r = slabpool::get_resource();
          void* p = r->allocate(c.bytes, c.alignment);
          r->deallocate(p, c.wrong_bytes, c.alignment);
        },
        wrong_size_report(c))
        << c.bytes << " bytes at alignment " << c.alignment;
  }
}

// Checked mode compares the size given to deallocate with the one it recorded at allocate: for
// every alignment (the aligned and large paths included) they must be the same number.
TEST(ResourceCheckedDeathTest, RightSizesPassInCheckedMode) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        choose_checked_mode(1);
        std::pmr::memory_resource* r = slabpool::get_resource();
        for (std::size_t alignment = 1; alignment <= SP_MAX_ALIGNMENT; alignment *= 2) {
          for (std::size_t bytes : {std::size_t{0}, std::size_t{1}, std::size_t{100}, alignment,
                                    alignment + 24, std::size_t{5000}, std::size_t{300000}}) {
            void* p = r->allocate(bytes, alignment);
            std::memset(p, 0x3c, bytes);
            r->deallocate(p, bytes, alignment);
          }
        }
        for (const sized_case& c : kSizedCases) {
          r->deallocate(r->allocate(c.bytes, c.alignment), c.bytes, c.alignment);
        }
        std::exit(0);
      },
      testing::ExitedWithCode(0), "");
}

// Without checked mode the size is only a hint: the release paths never read it.
TEST(ResourceDeathTest, WrongSizeIsNotCheckedWithoutCheckedMode) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        choose_checked_mode(0);
        std::pmr::memory_resource* r = slabpool::get_resource();
        for (const sized_case& c : kSizedCases) {
          r->deallocate(r->allocate(c.bytes, c.alignment), c.wrong_bytes, c.alignment);
        }
        std::exit(0);
      },
      testing::ExitedWithCode(0), "");
}

}  // namespace
