// Out-of-memory through fault injection: sp_testing_fail_maps(n) makes slabpool's next n OS
// mappings fail, which drives every slow path that maps (new slab, large block, huge block, a new
// thread's heap) into its failure branch. Works under every sanitizer. Each case runs in its own
// process, so "the first mapping" really is the first.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <functional>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "oom_test_util.hpp"
#include "slabpool/pmr.hpp"
#include "slabpool/slabpool.h"
#include "slabpool/slabpool.hpp"
#include "slabpool/testing.h"

namespace {

using namespace sp_oom;

constexpr long kAllMaps = 1L << 40;  // every mapping fails until sp_testing_fail_maps(0)

// Turns the injection off however the test ends.
struct maps_failing {
  explicit maps_failing(long count = kAllMaps) { sp_testing_fail_maps(count); }
  ~maps_failing() { sp_testing_fail_maps(0); }
};

// Keeps trim passes away: a pass could return the memory a test is exhausting.
void pause_trim() {
  sp_free(sp_malloc(16));
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  sp_option_set(SP_OPTION_TRIM_INTERVAL_MS, 60000);
}

TEST(oom_inject, first_allocation_fails_cleanly_then_works) {
  {
    maps_failing failing(1);  // the very first mapping: the thread's heap or its first segment
    errno = 0;
    EXPECT_EQ(sp_malloc(100), nullptr);
    EXPECT_EQ(errno, ENOMEM);
  }
  kept_blocks blocks;
  EXPECT_TRUE(blocks.add(sp_malloc(100), 100));
  EXPECT_TRUE(blocks.add(sp_malloc(100 * kKiB), 100 * kKiB));
  EXPECT_EQ(blocks.damaged(), 0u);
}

// Small blocks: once the segments mapped so far are full, a new slab needs a mapping.
TEST(oom_inject, new_slab) {
  pause_trim();
  kept_blocks blocks;
  ASSERT_TRUE(blocks.add(sp_malloc(1000), 1000));
  {
    maps_failing failing;
    errno = 0;
    ASSERT_NE(allocate_until_failure(blocks, 1000, 1'000'000, sp_malloc), SIZE_MAX);
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_EQ(blocks.damaged(), 0u);
    errno = 0;
    EXPECT_EQ(sp_calloc(10, 100), nullptr);  // the same class, zeroed: no room either
    EXPECT_EQ(errno, ENOMEM);
  }
  EXPECT_TRUE(blocks.add(sp_malloc(1000), 1000));
  void* zeroed = sp_calloc(10, 100);
  ASSERT_NE(zeroed, nullptr);
  EXPECT_EQ(sp_check::first_nonzero(zeroed, 1000), sp_check::kPatternOk);
  sp_free(zeroed);
  EXPECT_EQ(blocks.damaged(), 0u);
}

// A block freed by its owner is reused by the next allocation of its class, even when the OS
// refuses every mapping.
TEST(oom_inject, freed_block_reused_when_maps_fail) {
  pause_trim();
  kept_blocks blocks;
  ASSERT_TRUE(blocks.add(sp_malloc(1000), 1000));
  maps_failing failing;
  ASSERT_NE(allocate_until_failure(blocks, 1000, 1'000'000, sp_malloc), SIZE_MAX);
  sp_free(blocks[0].p);
  blocks[0].p = sp_malloc(1000);
  ASSERT_NE(blocks[0].p, nullptr) << "a free block of the class exists, yet allocation failed";
  sp_check::fill_pattern(blocks[0].p, 1000, blocks[0].seed);
  EXPECT_EQ(blocks.damaged(), 0u);
}

// Large blocks (runs of units inside segments).
TEST(oom_inject, large_block) {
  pause_trim();
  kept_blocks blocks;
  ASSERT_TRUE(blocks.add(sp_malloc(300 * kKiB), 300 * kKiB));
  // Allocated before mappings fail: a failed allocation gives back every empty segment (so that a
  // real out-of-memory retry finds address space), so later small slabs may need a mapping too.
  void* small = sp_malloc(200);
  ASSERT_NE(small, nullptr);
  {
    maps_failing failing;
    errno = 0;
    ASSERT_NE(allocate_until_failure(blocks, 300 * kKiB, 100'000, sp_malloc), SIZE_MAX);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(sp_calloc(1, 300 * kKiB), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(sp_aligned_alloc(SP_MAX_ALIGNMENT, 300 * kKiB), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    // Growing a small block into a large one fails and leaves it as it was.
    sp_check::fill_pattern(small, 200, 7);
    errno = 0;
    EXPECT_EQ(sp_realloc(small, 300 * kKiB), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_EQ(sp_check::check_pattern(small, 200, 7), sp_check::kPatternOk);
    sp_free(small);
    EXPECT_EQ(blocks.damaged(), 0u);
  }
  EXPECT_TRUE(blocks.add(sp_malloc(300 * kKiB), 300 * kKiB));
  EXPECT_TRUE(blocks.add(sp_aligned_alloc(SP_MAX_ALIGNMENT, 300 * kKiB), 300 * kKiB));
  EXPECT_TRUE(sp_check::is_aligned(blocks[blocks.count() - 1].p, SP_MAX_ALIGNMENT));
  EXPECT_EQ(blocks.damaged(), 0u);
}

// Huge blocks (a mapping each): the first attempt maps, so one failing mapping is enough.
TEST(oom_inject, huge_block) {
  kept_blocks blocks;
  ASSERT_TRUE(blocks.add(sp_malloc(100), 100));
  ASSERT_TRUE(blocks.add(sp_malloc(kMiB), kMiB));
  const std::size_t kHuge = 16 * kMiB;
  struct attempt {
    const char* what;
    void* (*call)(std::size_t);
  };
  const attempt attempts[] = {
      {"malloc", [](std::size_t n) { return sp_malloc(n); }},
      {"calloc", [](std::size_t n) { return sp_calloc(n / 16, 16); }},
      {"aligned_alloc", [](std::size_t n) { return sp_aligned_alloc(SP_MAX_ALIGNMENT, n); }},
  };
  // Every mapping fails: a single failure would be retried after a reclaim, and succeed.
  for (const attempt& a : attempts) {
    maps_failing failing;
    errno = 0;
    EXPECT_EQ(a.call(kHuge), nullptr) << a.what;
    EXPECT_EQ(errno, ENOMEM) << a.what;
  }
  {
    maps_failing failing;
    errno = 0;
    EXPECT_EQ(sp_realloc(blocks[1].p, kHuge), nullptr);  // large -> huge
    EXPECT_EQ(errno, ENOMEM);
  }
  EXPECT_EQ(blocks.damaged(), 0u);
  for (const attempt& a : attempts) EXPECT_TRUE(blocks.add(a.call(kHuge), kHuge)) << a.what;
  EXPECT_EQ(blocks.damaged(), 0u);
}

// A new thread's first allocation builds its heap; heap structs come from chunks mapped as
// threads appear. Threads are kept alive (so their heaps stay taken) until a new thread's first
// allocation needs a mapping, with every mapping failing: that allocation must fail cleanly and
// the same thread must be able to allocate once mappings work again.
TEST(oom_inject, new_thread_heap) {
  pause_trim();
  // Free units for the new threads' first slabs, so only their heaps can need a mapping.
  {
    std::vector<void*> spans;
    for (int i = 0; i < 8; ++i) spans.push_back(sp_malloc(3 * kMiB));
    for (void* p : spans) sp_free(p);
  }
  struct thread_state {
    std::atomic<int> first{0};  // 1 allocated, 2 failed with ENOMEM, 3 failed otherwise
    std::atomic<int> retry{0};  // after a failure: 1 allocated, 2 failed again
    std::atomic<int> damaged{0};
  };
  std::mutex lock;
  std::condition_variable changed;
  int phase = 0;  // 0 mappings fail, 1 mappings work, 2 threads may finish
  auto body = [&](thread_state& s) {
    errno = 0;
    void* p = sp_malloc(48);
    const bool failed = p == nullptr;
    std::unique_lock guard(lock);
    s.first = failed ? (errno == ENOMEM ? 2 : 3) : 1;
    changed.notify_all();
    changed.wait(guard, [&] { return phase >= 1; });
    if (failed) {
      p = sp_malloc(48);
      s.retry = p != nullptr ? 1 : 2;
      changed.notify_all();
    }
    changed.wait(guard, [&] { return phase >= 2; });
    if (p != nullptr) {
      sp_check::fill_pattern(p, 48, 1);
      if (sp_check::check_pattern(p, 48, 1) != sp_check::kPatternOk) ++s.damaged;
      sp_free(p);
    }
  };
  std::vector<std::unique_ptr<thread_state>> states;
  std::vector<std::thread> threads;
  sp_testing_fail_maps(kAllMaps);
  for (int i = 0; i < 1000; ++i) {
    states.push_back(std::make_unique<thread_state>());
    thread_state& s = *states.back();
    threads.emplace_back(body, std::ref(s));
    std::unique_lock guard(lock);
    changed.wait(guard, [&] { return s.first != 0; });
    if (s.first != 1) break;
  }
  sp_testing_fail_maps(0);
  thread_state& last = *states.back();
  {
    std::unique_lock guard(lock);
    phase = 1;
    changed.notify_all();
    changed.wait(guard, [&] { return last.first == 1 || last.retry != 0; });
    phase = 2;
    changed.notify_all();
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(last.first, 2) << "no new thread's first allocation needed a mapping ("
                           << threads.size() << " threads)";
  EXPECT_EQ(last.retry, 1) << "the thread could not allocate after mappings came back";
  for (const auto& s : states) EXPECT_EQ(s->damaged, 0);
}

TEST(oom_inject, cpp_and_pmr_throw) {
  {
    maps_failing failing;
    EXPECT_THROW(slabpool::malloc(16 * kMiB), std::bad_alloc);
    EXPECT_THROW(slabpool::calloc(kMiB, 16), std::bad_alloc);
    EXPECT_THROW(slabpool::aligned_alloc(4096, 16 * kMiB), std::bad_alloc);
    EXPECT_THROW((void)slabpool::get_resource()->allocate(16 * kMiB), std::bad_alloc);
    EXPECT_THROW((void)slabpool::get_resource()->allocate(16 * kMiB, 4096), std::bad_alloc);
    slabpool::arena_resource arena;
    EXPECT_THROW((void)arena.allocate(100), std::bad_alloc);       // first chunk
    EXPECT_THROW((void)arena.allocate(8 * kMiB), std::bad_alloc);  // own mapping
  }
  void* p = slabpool::malloc(16 * kMiB);
  slabpool::free(p);
  slabpool::arena_resource arena;
  arena.deallocate(arena.allocate(100), 100);
}

}  // namespace
