// slabpool::arena_resource: memory returned to the OS, reuse, alignment, thread check, failure.
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory_resource>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "checked_resource.hpp"
#include "slabpool/pmr.hpp"

namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;
constexpr std::size_t kMaxSmall = 128 * 1024;  // the largest block an arena cuts from a chunk

bool aligned(const void* p, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

// A trim clock the test moves by hand, so "idle for longer than the decay delay" is exact.
std::atomic<unsigned long long> g_fake_now{1'000'000};
unsigned long long fake_now() {
  return g_fake_now.load();
}

// 256 MiB through the arena (small blocks from chunks and oversized blocks with their own
// mappings), every page touched. release() unmaps the oversized blocks at once and hands the
// chunks back to slabpool, which keeps them for the next arena (reused without new memory) and
// returns them to the OS once they have been idle for the decay delay.
TEST(Arena, ReleasedMemoryIsReusedThenReturnedByTheDecay) {
  sp_set_clock(fake_now);
  // Free memory above SLABPOOL_CACHE goes back at the next pass whatever its age; with a budget
  // above everything this test frees, only the decay (the fake clock) decides.
  const long long cache_budget = sp_option_get(SP_OPTION_CACHE_BYTES);
  ASSERT_EQ(sp_option_set(SP_OPTION_CACHE_BYTES, 1LL << 30), 0);
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
  EXPECT_EQ(arena.mapped_bytes(), 0u);
  const std::size_t released = slabpool_test::resident_bytes();
  EXPECT_LE(released + 60 * kMiB, peak) << "the oversized blocks are unmapped at release";
  EXPECT_GE(released, before + 150 * kMiB) << "the chunks are kept for reuse";

  // Reused: another arena (here a scoped one, given back by its destructor) takes the memory
  // back instead of new pages (measured: 2 MiB of new pages, where 64 MiB come without reuse).
  {
    slabpool::arena_resource scoped;
    for (std::size_t i = 0; i < 64 * 1024; ++i) std::memset(scoped.allocate(1024), 3, 1024);
    EXPECT_GE(scoped.mapped_bytes(), 64 * kMiB);
    EXPECT_LE(slabpool_test::resident_bytes(), released + 8 * kMiB);
  }
  std::memset(arena.allocate(100), 4, 100);  // still usable after release()

  // Returned: once the delay has passed with nobody reusing it, one decay pass gives it back.
  g_fake_now += static_cast<unsigned long long>(sp_option_get(SP_OPTION_TRIM_DELAY_MS)) + 1;
  sp_trim_decay();
  const std::size_t after = slabpool_test::resident_bytes();
  sp_set_clock(nullptr);
  sp_option_set(SP_OPTION_CACHE_BYTES, cache_budget);
  EXPECT_LE(after + 240 * kMiB, peak) << "peak " << peak << " after the decay " << after;
}

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_minflt;
}

// One request of a server that builds its containers in an arena and drops them all at the end.
void one_request(std::pmr::memory_resource* arena) {
  std::pmr::vector<std::pmr::string> strings(arena);
  for (int i = 0; i < 300; ++i) strings.emplace_back(48 + i % 64, static_cast<char>('a' + i % 26));
  std::pmr::vector<int> numbers(2000, 7, arena);
  EXPECT_EQ(numbers.back() + static_cast<int>(strings.size()), 307);
}

// Arena per request (issue 13): released or destroyed, an arena's memory serves the next request
// without new pages; before, every request mapped and faulted its chunks in again. (Not in
// checked mode, whose quarantine holds freed chunks back from reuse on purpose.)
TEST(Arena, ArenaPerRequestTakesNoNewPages) {
  long first;
  {
    const long before = minor_faults();
    slabpool::arena_resource arena;
    one_request(&arena);
    first = minor_faults() - before;
  }
  ASSERT_GT(first, 0);
  slabpool::arena_resource reused;
  const long before = minor_faults();
  for (int request = 0; request < 50; ++request) {
    slabpool::arena_resource per_request;  // constructed per request
    one_request(&per_request);
    one_request(&reused);  // released per request
    reused.release();
  }
  const long later = minor_faults() - before;
  EXPECT_LE(later, first) << "the first request took " << first << " faults, the next 100 "
                          << later;
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

// An oversized block (one with a mapping of its own) is recognised by its own record, whatever
// size and alignment come back with it. A smaller size must not make it a small block (the next
// small allocation would get it), a larger one must not send the arena looking for a record past
// the end of the mapping (that crashed with SIGSEGV), and every path of deallocate (inline up to
// 1 KiB, the class table above it, the aligned lists) must tell.
std::string oversized_report(std::size_t allocated, std::size_t allocated_alignment,
                             const char* what, std::size_t returned,
                             std::size_t returned_alignment) {
  return "slabpool: arena_resource::deallocate\\(0x[0-9a-f]+\\): oversized block of " +
         std::to_string(allocated) + " bytes \\(alignment " + std::to_string(allocated_alignment) +
         "\\) returned with an? " + what +
         " that differs from its allocation: " + std::to_string(returned) + " bytes \\(alignment " +
         std::to_string(returned_alignment) + "\\)";
}

TEST(ArenaDeathTest, OversizedBlockReturnedWithSmallerSizeAborts) {
  // Release builds trust a small size (the fast paths stay as short as std::pmr's trust-the-size
  // pools); checked mode, on from this process's first allocation, asks the record every time.
  if (sp_option_set(SP_OPTION_CHECKED, 1) != 0 && sp_option_get(SP_OPTION_CHECKED) == 0)
    GTEST_SKIP() << "checked mode must be on from the first allocation: run this case alone";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  constexpr std::size_t kBig = 300 * 1024;
  slabpool::arena_resource arena;
  (void)arena.allocate(64);  // a chunk exists, so a misfiled block would be handed out from it
  void* big = arena.allocate(kBig);
  for (std::size_t bytes : {std::size_t{100}, std::size_t{1024}, std::size_t{4096}, kMaxSmall}) {
    EXPECT_DEATH(
        {
          arena.deallocate(big, bytes);
          // Reached only if the block was filed as a small one: hand it out again and say so.
          if (arena.allocate(bytes) == big) std::fputs("oversized block reused\n", stderr);
          std::_Exit(0);
        },
        oversized_report(kBig, 16, "size", bytes, 16))
        << bytes;
  }
  EXPECT_DEATH(arena.deallocate(big, 100, 64), oversized_report(kBig, 16, "size", 100, 64));
  EXPECT_DEATH(arena.deallocate(big, kBig - 4096),
               oversized_report(kBig, 16, "size", kBig - 4096, 16));
  arena.deallocate(big, kBig);
  EXPECT_EQ(arena.mapped_bytes(), std::size_t{64} << 10);
}

TEST(ArenaDeathTest, OversizedBlockReturnedWithLargerSizeAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  constexpr std::size_t kBig = 300 * 1024;
  slabpool::arena_resource arena;
  void* big = arena.allocate(kBig);
  for (std::size_t bytes : {kBig + 1, kBig + 4096, 4 * kMiB, std::size_t{1} << 40}) {
    EXPECT_DEATH(arena.deallocate(big, bytes), oversized_report(kBig, 16, "size", bytes, 16))
        << bytes;
  }
  arena.deallocate(big, kBig);
}

// Blocks that are oversized because of their alignment: the same size at a smaller alignment
// would send them to the small paths.
TEST(ArenaDeathTest, OversizedBlockReturnedWithOtherAlignmentAborts) {
  // A smaller alignment takes the fast path, which trusts it: checked mode (see above).
  if (sp_option_set(SP_OPTION_CHECKED, 1) != 0 && sp_option_get(SP_OPTION_CHECKED) == 0)
    GTEST_SKIP() << "checked mode must be on from the first allocation: run this case alone";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  slabpool::arena_resource arena;
  void* big = arena.allocate(100, 8192);
  EXPECT_DEATH(arena.deallocate(big, 100), oversized_report(100, 8192, "alignment", 100, 16));
  EXPECT_DEATH(arena.deallocate(big, 100, 4096),
               oversized_report(100, 8192, "alignment", 100, 4096));
  arena.deallocate(big, 100, 8192);
}

// The reverse mistake: a block from a chunk returned with an oversized size is not unmapped.
TEST(ArenaDeathTest, SmallBlockReturnedAsOversizedAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  slabpool::arena_resource arena;
  void* small = arena.allocate(100);
  EXPECT_DEATH(arena.deallocate(small, 4 * kMiB),
               "slabpool: arena_resource::deallocate\\(0x[0-9a-f]+\\): returned as an oversized "
               "block of 4194304 bytes \\(alignment 16\\), but it is not one");
  arena.deallocate(small, 100);
}

// Small blocks that happen to start on a page boundary look like oversized blocks at first sight
// (those always do); they are still small blocks, freed and reused as such.
TEST(Arena, PageAlignedSmallBlocksAreReusedLikeOthers) {
  for (std::size_t bytes : {std::size_t{16}, std::size_t{48}, std::size_t{1280}, std::size_t{4096},
                            std::size_t{20480}}) {
    // A fresh arena's first chunk starts on a page and its header takes 16 bytes: after 255
    // blocks of 16 bytes the bump pointer sits on a page boundary.
    slabpool::arena_resource arena(kMiB);
    std::vector<void*> blocks;
    for (int i = 0; i < 255; ++i) blocks.push_back(arena.allocate(16));
    std::size_t on_page = 0;
    for (int i = 0; i < 1000 && on_page < 4; ++i) {
      blocks.push_back(arena.allocate(bytes));
      if (aligned(blocks.back(), 4096)) ++on_page;
    }
    ASSERT_EQ(on_page, 4u) << bytes;
    const std::size_t mapped = arena.mapped_bytes();
    blocks.erase(blocks.begin(), blocks.begin() + 255);
    for (void* p : blocks) arena.deallocate(p, bytes);
    std::set<void*> again;
    for (std::size_t i = 0; i < blocks.size(); ++i) again.insert(arena.allocate(bytes));
    EXPECT_EQ(again, std::set<void*>(blocks.begin(), blocks.end())) << bytes;
    EXPECT_EQ(arena.mapped_bytes(), mapped) << bytes;
  }
}

}  // namespace
