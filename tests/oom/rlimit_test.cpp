// Real out-of-memory: RLIMIT_AS caps the address space a little above what the process uses, so
// slabpool's own mmap calls fail exactly as they would on a full machine. Every case runs in its
// own process (gtest_discover_tests), so a limit or a half-full pool never leaks into another.
//
// Skipped under ASan and TSan: their runtimes reserve terabytes of shadow address space up front
// and map more for every allocation, so any RLIMIT_AS near the real usage makes the sanitizer
// itself fail first. The fault-injection tests (inject_test.cpp) cover the same paths there.
#include <gtest/gtest.h>

#include <cerrno>
#include <memory_resource>
#include <new>
#include <vector>

#include "oom_test_util.hpp"
#include "slabpool/pmr.hpp"
#include "slabpool/slabpool.h"
#include "slabpool/slabpool.hpp"

namespace {

using namespace sp_oom;

// Headroom above the current address space: room for several 4 MiB segments (and the 8 MiB a
// segment mapping may need for a moment while it is aligned), and for gtest's own small needs.
constexpr std::size_t kHeadroom = 48 * kMiB;
// More than the headroom: can never be served under the limit.
constexpr std::size_t kTooBig = 256 * kMiB;

class oom_rlimit : public ::testing::Test {
 protected:
  void SetUp() override {
    if (kSanitized) GTEST_SKIP() << "RLIMIT_AS cannot be used under ASan/TSan (shadow memory)";
    // Warm up (heap, options, first segment) before the limit, then keep trim passes to explicit
    // sp_trim calls: a background thread would need an 8 MiB stack mapping under the limit.
    sp_free(sp_malloc(16));
    sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
    // Blocks of every kind from before the limit; they must survive everything below.
    for (std::size_t size : {24UL, 200UL, 3000UL, 50 * kKiB, 200 * kKiB, kMiB, 6 * kMiB}) {
      ASSERT_TRUE(before_.add(sp_malloc(size), size));
    }
  }

  kept_blocks before_;
};

TEST_F(oom_rlimit, c_api_returns_enomem_and_keeps_blocks) {
  kept_blocks small, large;
  {
    address_limit limit(kHeadroom);
    ASSERT_TRUE(limit.ok());
    errno = 0;
    EXPECT_NE(allocate_until_failure(small, 1000, 1'000'000, sp_malloc), SIZE_MAX);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_NE(allocate_until_failure(large, 700 * kKiB, 1000, sp_malloc), SIZE_MAX);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(sp_malloc(kTooBig), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(sp_calloc(kTooBig / 16, 16), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(sp_aligned_alloc(SP_MAX_ALIGNMENT, kTooBig), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    // A failed realloc leaves the block where it was, contents and all.
    errno = 0;
    EXPECT_EQ(sp_realloc(before_[1].p, kTooBig), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_EQ(before_.damaged(), 0u);
    EXPECT_EQ(small.damaged(), 0u);
    EXPECT_EQ(large.damaged(), 0u);
    // Freed memory is served again, still under the limit.
    const std::size_t small_count = small.count(), large_count = large.count();
    small.free_all();
    large.free_all();
    EXPECT_GE(allocate_until_failure(small, 1000, small_count, sp_malloc), small_count);
    EXPECT_GE(allocate_until_failure(large, 700 * kKiB, large_count, sp_malloc), large_count);
    EXPECT_EQ(small.damaged() + large.damaged(), 0u);
  }
  EXPECT_EQ(before_.damaged(), 0u);
}

// Memory freed in one size class serves another: the freed slabs go back to the pool (or are
// reclaimed when a mapping fails) instead of being held for their old class.
TEST_F(oom_rlimit, freed_memory_serves_other_sizes) {
  kept_blocks first(1 << 20), second(1 << 20);
  address_limit limit(kHeadroom);
  ASSERT_TRUE(limit.ok());
  ASSERT_NE(allocate_until_failure(first, 256, 1 << 20, sp_malloc), SIZE_MAX);
  const std::size_t bytes = first.count() * 256;
  first.free_all();
  // At least half of what 256-byte blocks had, in 2000-byte blocks and in large blocks.
  EXPECT_GE(allocate_until_failure(second, 2000, bytes / 2 / 2000, sp_malloc), bytes / 2 / 2000);
  second.free_all();
  EXPECT_GE(allocate_until_failure(second, 300 * kKiB, bytes / 2 / (300 * kKiB), sp_malloc),
            bytes / 2 / (300 * kKiB));
  EXPECT_EQ(second.damaged(), 0u);
  EXPECT_EQ(before_.damaged(), 0u);
}

// A freed huge block is cached for reuse; a different huge size must still be served once the
// cache is the only memory left (the cache gives way instead of the request failing).
TEST_F(oom_rlimit, cached_huge_block_gives_way) {
  void* huge = sp_malloc(24 * kMiB);
  ASSERT_NE(huge, nullptr);
  address_limit limit(kHeadroom - 24 * kMiB);  // the huge block already uses its share
  ASSERT_TRUE(limit.ok());
  sp_free(huge);  // now cached: resident, mapped, and not in use
  void* other = sp_malloc(36 * kMiB);
  EXPECT_NE(other, nullptr) << "the 24 MiB cached block was not released to serve 36 MiB";
  sp_free(other);
  EXPECT_EQ(before_.damaged(), 0u);
}

// The same for memory freed as large blocks (runs of units in segments): a huge block needs a
// mapping of its own, so the now-empty segments must give way.
TEST_F(oom_rlimit, freed_large_blocks_serve_a_huge_one) {
  address_limit limit(kHeadroom);
  ASSERT_TRUE(limit.ok());
  kept_blocks large;
  ASSERT_NE(allocate_until_failure(large, kMiB, 1000, sp_malloc), SIZE_MAX);
  ASSERT_GE(large.count(), 24u);
  large.free_all();
  void* huge = sp_malloc(16 * kMiB);
  EXPECT_NE(huge, nullptr) << "empty segments were not released to serve a huge block";
  sp_free(huge);
  EXPECT_EQ(before_.damaged(), 0u);
}

TEST_F(oom_rlimit, cpp_api_throws_bad_alloc) {
  address_limit limit(kHeadroom);
  ASSERT_TRUE(limit.ok());
  EXPECT_THROW(slabpool::malloc(kTooBig), std::bad_alloc);
  EXPECT_THROW(slabpool::calloc(kTooBig / 8, 8), std::bad_alloc);
  EXPECT_THROW(slabpool::aligned_alloc(4096, kTooBig), std::bad_alloc);
  EXPECT_THROW(slabpool::realloc(before_[2].p, kTooBig), std::bad_alloc);
  kept_blocks filled;
  bool threw = false;
  try {
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(filled.add(slabpool::malloc(kMiB), kMiB));
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  EXPECT_TRUE(threw);
  EXPECT_EQ(filled.damaged() + before_.damaged(), 0u);
  filled.free_all();
  void* again = slabpool::malloc(kMiB);  // must not throw once memory was freed
  slabpool::free(again);
}

TEST_F(oom_rlimit, pmr_resource_throws_and_containers_stay_intact) {
  address_limit limit(kHeadroom);
  ASSERT_TRUE(limit.ok());
  std::pmr::memory_resource* resource = slabpool::get_resource();
  EXPECT_THROW((void)resource->allocate(kTooBig, 64), std::bad_alloc);
  EXPECT_THROW((void)resource->allocate(kTooBig), std::bad_alloc);
  // std::vector's strong guarantee holds on top of the resource: a failed growth keeps every
  // element.
  std::pmr::vector<std::uint64_t> values(resource);
  bool threw = false;
  try {
    for (std::uint64_t i = 0;; ++i) values.push_back(i * 0x9e3779b97f4a7c15ULL);
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  EXPECT_TRUE(threw);
  for (std::size_t i = 0; i < values.size(); ++i) {
    ASSERT_EQ(values[i], i * 0x9e3779b97f4a7c15ULL) << "element " << i;
  }
  values = std::pmr::vector<std::uint64_t>(resource);  // frees the big buffer
  void* p = resource->allocate(4 * kMiB);
  resource->deallocate(p, 4 * kMiB);
  EXPECT_EQ(before_.damaged(), 0u);
}

TEST_F(oom_rlimit, arena_resource_throws_and_recovers) {
  address_limit limit(kHeadroom);
  ASSERT_TRUE(limit.ok());
  slabpool::arena_resource arena;
  EXPECT_THROW((void)arena.allocate(kTooBig), std::bad_alloc);
  std::vector<kept_block> blocks;
  bool threw = false;
  try {
    for (int i = 0; i < 100'000; ++i) {
      void* p = arena.allocate(64 * kKiB);
      blocks.push_back({p, 64 * kKiB, sp_check::address_seed(p, i)});
      sp_check::fill_pattern(p, 64 * kKiB, blocks.back().seed);
    }
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  EXPECT_TRUE(threw);
  for (const kept_block& b : blocks) {
    ASSERT_EQ(sp_check::check_pattern(b.p, b.size, b.seed), sp_check::kPatternOk);
  }
  arena.release();  // every byte back to the OS: the arena works again under the same limit
  void* p = arena.allocate(8 * kMiB);
  arena.deallocate(p, 8 * kMiB);
}

}  // namespace
