// The edges of a thread's life: blocks that outlive their thread, frees from threads that never
// allocated, and allocation from a TLS destructor that runs after the allocator's own.
#include <gtest/gtest.h>

#include <pthread.h>

#include <algorithm>
#include <deque>
#include <set>
#include <thread>
#include <vector>

#include "stress_blocks.hpp"

namespace {

using namespace sp_test;

std::vector<tagged_block> allocate_on_new_thread(block_ledger& ledger, std::size_t count,
                                                 std::size_t size, std::uint64_t seed) {
  std::vector<tagged_block> blocks;
  std::thread([&] {
    rng r(seed);
    for (std::size_t i = 0; i < count; ++i) blocks.push_back(ledger.make(size, r));
  }).join();
  return blocks;
}

TEST(ThreadExit, MainFreesBlocksOfAnExitedThread) {
  block_ledger ledger;
  std::vector<tagged_block> blocks;
  std::thread([&] {
    rng r(1);
    for (std::size_t size : {std::size_t{16}, std::size_t{100}, std::size_t{3000}, 100 * kKiB,
                             1 * kMiB, 3 * kMiB, 9 * kMiB}) {
      for (int i = 0; i < 20; ++i) blocks.push_back(ledger.make(size, r));
    }
  }).join();
  // The owner is gone: every free below is from a foreign thread into an abandoned slab.
  for (const tagged_block& b : blocks) ledger.release(b);
  expect_ledger_clean(ledger);

  // New threads still work, on every size.
  for (int t = 0; t < 4; ++t) {
    auto again = allocate_on_new_thread(ledger, 50, 100 + t * 1000, t);
    for (const tagged_block& b : again) ledger.release(b);
  }
  expect_ledger_clean(ledger);
}

TEST(ThreadExit, MemoryFreedAfterTheOwnerExitedIsReused) {
  // 3584 B is a class no other test here uses, so the only abandoned slabs of that class are the
  // ones the first thread leaves.
  constexpr std::size_t kSize = 3584;
  constexpr std::size_t kCount = 500;
  block_ledger ledger;
  const auto first = allocate_on_new_thread(ledger, kCount, kSize, 1);
  std::set<void*> old_addresses;
  for (const tagged_block& b : first) {
    old_addresses.insert(b.p);
    ledger.release(b);
  }
  const std::size_t mapped_before = mapped_bytes();
  const auto second = allocate_on_new_thread(ledger, kCount, kSize, 2);
  const std::size_t reused = static_cast<std::size_t>(
      std::count_if(second.begin(), second.end(),
                    [&](const tagged_block& b) { return old_addresses.count(b.p); }));
  EXPECT_GE(reused, kCount * 9 / 10) << "blocks freed after their owner exited were not reused";
  EXPECT_LE(mapped_bytes(), mapped_before) << "a new thread mapped memory instead of reusing";
  for (const tagged_block& b : second) ledger.release(b);
  expect_ledger_clean(ledger);
}

TEST(ThreadExit, RepeatedExitsWithLiveBlocksDoNotGrowMemory) {
  block_ledger ledger;
  std::size_t mapped_after_first = 0;
  for (int round = 0; round < 100; ++round) {
    const auto blocks = allocate_on_new_thread(ledger, 300, 16 + (round % 8) * 48, round);
    for (const tagged_block& b : blocks) ledger.release(b);
    if (round == 0) mapped_after_first = mapped_bytes();
  }
  expect_ledger_clean(ledger);
  EXPECT_LE(mapped_bytes(), mapped_after_first + 4 * kMiB);
}

TEST(ThreadExit, ThreadThatNeverAllocatedCanFree) {
  block_ledger ledger;
  rng r(3);
  std::vector<tagged_block> blocks;
  for (int i = 0; i < 200; ++i) blocks.push_back(ledger.make(random_block_size(r), r));
  std::thread([&] {
    for (const tagged_block& b : blocks) ledger.release(b);
  }).join();
  // The main thread collects those remote frees and keeps allocating.
  for (int i = 0; i < 2000; ++i) ledger.release(ledger.make(random_block_size(r), r));
  expect_ledger_clean(ledger);
}

TEST(ThreadExit, BlocksCrossSeveralGenerationsOfThreads) {
  // A block allocated by thread 1 is freed by thread 3 after thread 2 has passed it on and exited:
  // no thread that touches it is alive at the end.
  block_ledger ledger;
  std::vector<tagged_block> carried;
  for (int generation = 0; generation < 20; ++generation) {
    std::thread([&, generation] {
      rng r(100 + generation);
      std::vector<tagged_block> next;
      for (std::size_t i = 0; i < carried.size(); ++i) {
        if (i % 2 == 0) {
          ledger.release(carried[i]);
        } else {
          ledger.resize(carried[i], random_block_size(r), r);
          next.push_back(carried[i]);
        }
      }
      for (int i = 0; i < 100; ++i) next.push_back(ledger.make(random_block_size(r), r));
      carried.swap(next);
    }).join();
  }
  for (const tagged_block& b : carried) ledger.release(b);
  expect_ledger_clean(ledger);
}

TEST(ThreadExit, SlabsFreedAfterOwnersExitAreReusedByLaterThreads) {
  // Each thread allocates one 60 KiB block (a class with 8 blocks per 512 KiB slab) and exits;
  // the main thread frees blocks ten threads later. At most 11 blocks are ever live, so two or
  // three slabs suffice if the slabs of exited threads are reused once their blocks come back.
  const trim_paused paused;  // reuse must not depend on a trim pass releasing the slabs
  constexpr std::size_t kSize = 60 * kKiB;
  constexpr std::size_t kBacklog = 10;
  const std::size_t threads = scaled(2000, 200);
  block_ledger ledger;
  std::deque<tagged_block> backlog;
  std::set<std::uintptr_t> units_used;
  const std::size_t base = mapped_bytes();
  for (std::size_t i = 0; i < threads; ++i) {
    const auto blocks = allocate_on_new_thread(ledger, 1, kSize, i);
    units_used.insert(reinterpret_cast<std::uintptr_t>(blocks[0].p) >> 16);
    backlog.push_back(blocks[0]);
    if (backlog.size() > kBacklog) {
      ledger.release(backlog.front());
      backlog.pop_front();
    }
  }
  for (const tagged_block& b : backlog) ledger.release(b);
  expect_ledger_clean(ledger);
  EXPECT_LE(units_used.size(), 64u) << "later threads kept taking fresh slabs";
  EXPECT_LT(mapped_growth(base), 16 * kMiB) << "later threads kept taking fresh slabs";
}

// --- allocation from a TLS destructor that runs after slabpool's own -----------------------
block_ledger* g_late_ledger = nullptr;
std::vector<tagged_block>* g_late_blocks = nullptr;
int g_late_calls = 0;

void late_destructor(void*) {
  // Runs after slabpool's exit hook when our key was created later: this thread's heap is gone
  // and the allocation must build a fresh one (which pthread then tears down again).
  ++g_late_calls;
  rng r(77);
  for (int i = 0; i < 10; ++i) g_late_blocks->push_back(g_late_ledger->make(100 + i * 300, r));
  g_late_ledger->release(g_late_ledger->make(5000, r));
}

TEST(ThreadExit, AllocationInALaterTlsDestructor) {
  // slabpool creates its key at the first allocation on any thread; this test's key comes later,
  // and glibc runs destructors in key order.
  void* warm = sp_malloc(1);
  sp_free(warm);
  pthread_key_t key;
  ASSERT_EQ(pthread_key_create(&key, late_destructor), 0);
  block_ledger ledger;
  std::vector<tagged_block> blocks;
  g_late_ledger = &ledger;
  g_late_blocks = &blocks;
  for (int t = 0; t < 8; ++t) {
    std::thread([&] {
      void* p = sp_malloc(64);
      sp_free(p);
      pthread_setspecific(key, &ledger);
    }).join();
  }
  EXPECT_EQ(g_late_calls, 8);
  for (const tagged_block& b : blocks) ledger.release(b);
  expect_ledger_clean(ledger);
  pthread_key_delete(key);
}

}  // namespace
