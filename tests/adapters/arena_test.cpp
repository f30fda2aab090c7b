// slabpool::arena_resource: memory returned to the OS, reuse, alignment, thread check, failure.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <new>
#include <set>
#include <thread>
#include <vector>

#include "checked_resource.hpp"
#include "slabpool/pmr.hpp"

namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

bool aligned(const void* p, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

// 256 MiB through the arena (small blocks from chunks and oversized blocks with their own
// mappings), every page touched; release() must hand it back to the OS at once.
TEST(Arena, ReleaseLowersResidentMemory) {
  slabpool::arena_resource arena;
  const std::size_t before = slabpool_test::resident_bytes();
  ASSERT_GT(before, 0u) << "/proc/self/statm unreadable";
  for (std::size_t i = 0; i < 192 * 1024; ++i) {  // 192 MiB of 1 KiB blocks
    std::memset(arena.allocate(1024), 1, 1024);
  }
  for (int i = 0; i < 64; ++i) std::memset(arena.allocate(kMiB), 2, kMiB);  // 64 MiB oversized
  const std::size_t peak = slabpool_test::resident_bytes();
  EXPECT_GE(arena.mapped_bytes(), 256 * kMiB);
  EXPECT_GE(peak, before + 240 * kMiB);
  arena.release();
  const std::size_t after = slabpool_test::resident_bytes();
  EXPECT_EQ(arena.mapped_bytes(), 0u);
  EXPECT_LE(after + 240 * kMiB, peak) << "peak " << peak << " after release " << after;

  // Still usable, and the destructor returns memory too.
  {
    slabpool::arena_resource scoped;
    for (int i = 0; i < 64; ++i) std::memset(scoped.allocate(kMiB / 2), 3, kMiB / 2);
    std::memset(arena.allocate(100), 4, 100);
    EXPECT_GE(slabpool_test::resident_bytes(), after + 30 * kMiB);
  }
  EXPECT_LE(slabpool_test::resident_bytes(), after + 8 * kMiB);
}

TEST(Arena, AlignmentSweepUpTo4MiB) {
  slabpool::arena_resource arena;
  for (std::size_t alignment = 1; alignment <= 4 * kMiB; alignment *= 2) {
    std::vector<std::pair<void*, std::size_t>> live;
    for (std::size_t bytes : {std::size_t{1}, std::size_t{40}, alignment, alignment + 16,
                              std::size_t{5000}, std::size_t{200000}}) {
      for (int round = 0; round < 3; ++round) {  // the second and third may reuse freed blocks
        void* p = arena.allocate(bytes, alignment);
        ASSERT_TRUE(aligned(p, alignment)) << bytes << " bytes at " << alignment;
        std::memset(p, 0x6b, bytes);
        if (round == 1) {
          live.emplace_back(p, bytes);
        } else {
          arena.deallocate(p, bytes, alignment);
        }
      }
    }
    for (auto [p, bytes] : live) arena.deallocate(p, bytes, alignment);
  }
}

// Blocks freed at the default alignment must not come back for an aligned request of the same
// size unless they satisfy it.
TEST(Arena, AlignedRequestsNeverGetUnderAlignedFreedBlocks) {
  slabpool::arena_resource arena;
  for (std::size_t bytes = 16; bytes <= 4096; bytes += 48) {
    std::vector<void*> plain;
    for (int i = 0; i < 8; ++i) plain.push_back(arena.allocate(bytes, 16));
    for (void* p : plain) arena.deallocate(p, bytes, 16);
    for (std::size_t alignment = 32; alignment <= 4096; alignment *= 2) {
      void* p = arena.allocate(bytes, alignment);
      EXPECT_TRUE(aligned(p, alignment)) << bytes << " bytes at " << alignment;
      arena.deallocate(p, bytes, alignment);
    }
  }
}

TEST(Arena, DeallocatedBlocksAreReusedWithoutGrowth) {
  slabpool::arena_resource arena;
  const std::size_t sizes[] = {1, 16, 24, 100, 256, 1000, 4096, 70000, 131072};
  for (std::size_t bytes : sizes) {
    void* first = arena.allocate(bytes);
    arena.deallocate(first, bytes);
    EXPECT_EQ(arena.allocate(bytes), first) << bytes;
    arena.deallocate(first, bytes);
  }
  for (std::size_t alignment : {64, 512, 4096}) {
    void* first = arena.allocate(300, alignment);
    arena.deallocate(first, 300, alignment);
    EXPECT_EQ(arena.allocate(300, alignment), first) << alignment;
    arena.deallocate(first, 300, alignment);
  }

  // A churning working set: after the first round, the mapping never grows.
  std::vector<void*> blocks(1000);
  std::size_t mapped_after_first_round = 0;
  for (int round = 0; round < 50; ++round) {
    for (std::size_t i = 0; i < blocks.size(); ++i) blocks[i] = arena.allocate(sizes[i % 8]);
    for (std::size_t i = 0; i < blocks.size(); ++i) arena.deallocate(blocks[i], sizes[i % 8]);
    if (round == 0) mapped_after_first_round = arena.mapped_bytes();
  }
  EXPECT_EQ(arena.mapped_bytes(), mapped_after_first_round);
}

TEST(Arena, OversizedBlocksAreUnmappedAtDeallocate) {
  slabpool::arena_resource arena;
  (void)arena.allocate(64);  // map the first chunk
  const std::size_t base = arena.mapped_bytes();
  void* big = arena.allocate(10 * kMiB);
  void* aligned_big = arena.allocate(100, kMiB);
  EXPECT_TRUE(aligned(aligned_big, kMiB));
  EXPECT_GE(arena.mapped_bytes(), base + 10 * kMiB);
  arena.deallocate(big, 10 * kMiB);
  arena.deallocate(aligned_big, 100, kMiB);
  EXPECT_EQ(arena.mapped_bytes(), base);
}

TEST(Arena, DistinctLiveBlocksNeverOverlap) {
  slabpool::arena_resource arena;
  slabpool_test::checked_resource checked(&arena);
  std::vector<std::pair<void*, std::size_t>> live;
  for (std::size_t i = 0; i < 20000; ++i) {
    const std::size_t bytes = (i * 7919) % 3000;
    live.emplace_back(checked.allocate(bytes, i % 5 == 0 ? 64 : 16), bytes);
    if (i % 3 == 0) {
      auto [p, n] = live[i / 2];
      if (p != nullptr) checked.deallocate(p, n, (i / 2) % 5 == 0 ? 64 : 16);
      live[i / 2].first = nullptr;
    }
  }
  for (std::size_t i = 0; i < live.size(); ++i) {
    if (live[i].first != nullptr)
      checked.deallocate(live[i].first, live[i].second, i % 5 == 0 ? 64 : 16);
  }
}

TEST(Arena, ImpossibleRequestsThrowBadAlloc) {
  slabpool::arena_resource arena;
  EXPECT_THROW((void)arena.allocate(SIZE_MAX / 2), std::bad_alloc);
  EXPECT_THROW((void)arena.allocate(SIZE_MAX), std::bad_alloc);
  EXPECT_THROW((void)arena.allocate(SIZE_MAX / 2, 4096), std::bad_alloc);
  // Not a constant, so the compiler does not warn about an alignment it cannot assume.
  volatile std::size_t huge_alignment = std::size_t{1} << 62;
  EXPECT_THROW((void)arena.allocate(16, huge_alignment), std::bad_alloc);
  EXPECT_EQ(arena.mapped_bytes(), 0u);
  void* p = arena.allocate(32);  // still usable
  arena.deallocate(p, 32);
}

TEST(Arena, EqualOnlyToItself) {
  slabpool::arena_resource a;
  slabpool::arena_resource b;
  EXPECT_TRUE(a == a);
  EXPECT_FALSE(a == b);
  EXPECT_FALSE(a == *slabpool::get_resource());
}

// The first thread to use an arena owns it; release() gives it up for the next thread.
TEST(Arena, OwnershipGoesToFirstUserAndIsFreedByRelease) {
  slabpool::arena_resource arena;  // constructed here, used only by the workers
  std::thread first([&] {
    void* p = arena.allocate(48);
    arena.deallocate(p, 48);
  });
  first.join();
  arena.release();
  std::thread second([&] { std::memset(arena.allocate(48), 0, 48); });
  second.join();
}

TEST(ArenaDeathTest, UseFromAnotherThreadAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  slabpool::arena_resource arena;
  void* p = arena.allocate(64);
  void* q = arena.allocate(4096);  // above 1 KiB: the second-tier path checks too
  for (std::size_t bytes : {std::size_t{64}, std::size_t{4096}}) {
    EXPECT_DEATH(
        {
          std::thread intruder([&] { (void)arena.allocate(bytes); });
          intruder.join();
        },
        "arena_resource used from a thread other than its owner");
  }
  EXPECT_DEATH(
      {
        std::thread intruder([&] { arena.deallocate(p, 64); });
        intruder.join();
      },
      "arena_resource used from a thread other than its owner");
  EXPECT_DEATH(
      {
        std::thread intruder([&] { arena.deallocate(q, 4096); });
        intruder.join();
      },
      "arena_resource used from a thread other than its owner");
  arena.deallocate(p, 64);  // the owner itself is fine
  arena.deallocate(q, 4096);
}

TEST(ArenaDeathTest, OversizedBlockReturnedWithWrongSizeAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  slabpool::arena_resource arena;
  void* p = arena.allocate(kMiB);
  EXPECT_DEATH(arena.deallocate(p, kMiB - 4096), "size that differs from its allocation");
  arena.deallocate(p, kMiB);
}

}  // namespace
