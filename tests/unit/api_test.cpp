// Round trips through the C and C++ APIs: every block is usable for its whole usable size, blocks
// never overlap, and the null / zero-size / ownership corner cases behave as documented.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <set>
#include <vector>

#include "common/fake_clock.hpp"
#include "slabpool/slabpool.h"
#include "slabpool/slabpool.hpp"
#include "unit_test_util.hpp"

namespace {

using namespace sp_test;

struct live_block {
  void* p;
  std::size_t usable;
  std::uint64_t seed;
};

// Allocates `size`, checks the basic promises and fills the whole usable size with a pattern.
live_block make_block(std::size_t size, std::uint64_t seed) {
  void* p = sp_malloc(size);
  EXPECT_NE(p, nullptr) << "size " << size;
  if (p == nullptr) return {nullptr, 0, seed};
  EXPECT_TRUE(is_aligned(p, 16)) << "size " << size << " p " << p;
  const std::size_t usable = sp_usable_size(p);
  EXPECT_GE(usable, size) << "size " << size;
  EXPECT_TRUE(sp_owns(p)) << "size " << size;
  fill_pattern(p, usable, address_seed(p, seed));
  return {p, usable, seed};
}

void check_and_free(const live_block& b) {
  if (b.p == nullptr) return;
  EXPECT_EQ(sp_usable_size(b.p), b.usable);
  EXPECT_EQ(check_pattern(b.p, b.usable, address_seed(b.p, b.seed)), kPatternOk)
      << "block " << b.p << " of usable size " << b.usable << " was overwritten";
  sp_free(b.p);
}

// Sizes 0..300 KiB: every size through the table range, then prime steps that land on varied
// offsets within the geometric classes and the large-block units.
std::vector<std::size_t> sweep_sizes() {
  std::vector<std::size_t> sizes;
  for (std::size_t size = 0; size <= 1100; ++size) sizes.push_back(size);
  for (std::size_t size = 1100; size <= 20 * kKiB; size += 61) sizes.push_back(size);
  for (std::size_t size = 20 * kKiB; size <= 300 * kKiB; size += 1021) sizes.push_back(size);
  sizes.push_back(128 * kKiB);
  sizes.push_back(128 * kKiB + 1);
  sizes.push_back(300 * kKiB);
  return sizes;
}

TEST(Api, RoundTripSizesUpTo300KiB) {
  // A window of live blocks catches overlap between neighbours, not only reuse of one block.
  constexpr std::size_t kWindow = 64;
  std::vector<live_block> window(kWindow, live_block{nullptr, 0, 0});
  const std::vector<std::size_t> sizes = sweep_sizes();
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    live_block& slot = window[i % kWindow];
    check_and_free(slot);
    slot = make_block(sizes[i], i);
    if (::testing::Test::HasFailure()) break;
  }
  for (const live_block& b : window) check_and_free(b);
}

TEST(Api, RoundTripHugeBlocks) {
  for (std::size_t size : {4 * kMiB - 1, 4 * kMiB + 1, 8 * kMiB, 64 * kMiB}) {
    live_block b = make_block(size, size);
    check_and_free(b);
  }
}

TEST(Api, ReusedBlocksAreFullyUsable) {
  // Freed blocks come back dirty from the free list; a second round checks their link words do
  // not stay in the way of the caller's data.
  for (int round = 0; round < 3; ++round) {
    std::vector<live_block> blocks;
    for (std::size_t size = 16; size <= 4096; size += 16) blocks.push_back(make_block(size, size));
    for (const live_block& b : blocks) check_and_free(b);
  }
}

TEST(Api, UsableSizeOfNullIsZero) {
  EXPECT_EQ(sp_usable_size(nullptr), 0u);
  EXPECT_EQ(slabpool::usable_size(nullptr), 0u);
}

TEST(Api, MallocZeroReturnsUniqueBlocks) {
  std::set<void*> seen;
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) {
    void* p = sp_malloc(0);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(seen.insert(p).second) << "sp_malloc(0) returned a live pointer twice: " << p;
    blocks.push_back(p);
  }
  void* q = slabpool::malloc(0);
  EXPECT_NE(q, nullptr);
  EXPECT_EQ(seen.count(q), 0u);
  slabpool::free(q);
  for (void* p : blocks) sp_free(p);
}

TEST(Api, FreeNullIsANoOp) {
  sp_free(nullptr);
  sp_free_sized(nullptr, 0);
  sp_free_sized(nullptr, 100);
  slabpool::free(nullptr);
  slabpool::free_sized(nullptr, 0);
  // Still working afterwards.
  void* p = sp_malloc(32);
  ASSERT_NE(p, nullptr);
  sp_free(p);
}

TEST(Api, MallocTooLargeFailsWithEnomem) {
  for (std::size_t size :
       {SIZE_MAX, SIZE_MAX - 4096, std::size_t{PTRDIFF_MAX}, std::size_t{PTRDIFF_MAX} + 1}) {
    errno = 0;
    EXPECT_EQ(sp_malloc(size), nullptr) << "size " << size;
    EXPECT_EQ(errno, ENOMEM) << "size " << size;
    EXPECT_THROW(slabpool::malloc(size), std::bad_alloc) << "size " << size;
  }
}

TEST(Api, OwnsOurBlocksIncludingInteriorBytes) {
  for (std::size_t size :
       {std::size_t{1}, std::size_t{100}, 4 * kKiB, 128 * kKiB, 1 * kMiB, 5 * kMiB, 24 * kMiB}) {
    auto* p = static_cast<char*>(sp_malloc(size));
    ASSERT_NE(p, nullptr);
    const std::size_t usable = sp_usable_size(p);
    EXPECT_TRUE(sp_owns(p)) << "size " << size;
    EXPECT_TRUE(sp_owns(p + usable / 2)) << "size " << size;
    EXPECT_TRUE(sp_owns(p + usable - 1)) << "size " << size;
    EXPECT_TRUE(slabpool::owns(p + usable - 1)) << "size " << size;
    sp_free(p);
  }
}

int g_static_int = 0;

TEST(Api, DoesNotOwnForeignMemory) {
  int on_stack = 0;
  EXPECT_FALSE(sp_owns(nullptr));
  EXPECT_FALSE(sp_owns(&on_stack));
  EXPECT_FALSE(sp_owns(&g_static_int));
  EXPECT_FALSE(sp_owns(reinterpret_cast<const void*>(&sp_malloc)));
  EXPECT_FALSE(sp_owns(reinterpret_cast<const void*>(UINTPTR_MAX)));
  EXPECT_FALSE(slabpool::owns(&on_stack));
  // glibc's heap (brk) and glibc's mmap'd chunks.
  for (std::size_t size : {std::size_t{64}, 8 * kMiB}) {
    auto* p = static_cast<char*>(std::malloc(size));
    ASSERT_NE(p, nullptr);
    EXPECT_FALSE(sp_owns(p)) << "glibc block of " << size;
    EXPECT_FALSE(sp_owns(p + size - 1)) << "glibc block of " << size;
    std::free(p);
  }
}

TEST(Api, HugeBlockIsNotOwnedOnceUnmapped) {
  // A freed huge block may stay cached (still ours); once a trim unmaps it, its address range
  // must leave the segment map too, or a later foreign mapping there would be taken for ours.
  auto* p = static_cast<char*>(sp_malloc(32 * kMiB));
  ASSERT_NE(p, nullptr);
  char* middle = p + 16 * kMiB;
  EXPECT_TRUE(sp_owns(middle));
  sp_free(p);
  sp_trim();
  EXPECT_FALSE(sp_owns(middle));
}

TEST(Api, FreeSizedReleasesMemory) {
  // If free_sized did not free, these loops would map gigabytes. No decay pass runs meanwhile: one
  // that decommits the freed units holds them while the kernel works, and a block asked for then
  // takes a new segment (ASan builds, slow enough for several passes, saw 12 MiB mapped).
  const auto background = sp_option_get(SP_OPTION_BACKGROUND_TRIM);
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  sp_set_clock(sp_test::fake_clock);
  const std::size_t before = mapped_bytes();
  for (int i = 0; i < 2000; ++i) {
    for (std::size_t size : {std::size_t{24}, std::size_t{3000}, 100 * kKiB, 1 * kMiB}) {
      void* p = sp_malloc(size);
      ASSERT_NE(p, nullptr);
      fill_pattern(p, size, size);
      sp_free_sized(p, size);
    }
    void* q = slabpool::malloc(2 * kMiB);
    slabpool::free_sized(q, 2 * kMiB);
  }
  EXPECT_LE(mapped_bytes(), before + 8 * kMiB);
  // A freed huge block may be cached for reuse, but only that one.
  const std::size_t before_huge = mapped_bytes();
  for (int i = 0; i < 100; ++i) {
    void* huge = sp_malloc(16 * kMiB);
    ASSERT_NE(huge, nullptr);
    sp_free_sized(huge, 16 * kMiB);
  }
  EXPECT_LE(mapped_bytes(), before_huge + 24 * kMiB);
  sp_set_clock(nullptr);
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, background);
}

TEST(Api, CppApiRoundTrip) {
  for (std::size_t size :
       {std::size_t{0}, std::size_t{17}, 1000 * std::size_t{1}, 200 * kKiB, 6 * kMiB}) {
    void* p = slabpool::malloc(size);
    ASSERT_NE(p, nullptr);
    const std::size_t usable = slabpool::usable_size(p);
    EXPECT_GE(usable, size);
    EXPECT_TRUE(slabpool::owns(p));
    fill_pattern(p, usable, 7);
    EXPECT_EQ(check_pattern(p, usable, 7), kPatternOk);
    slabpool::free(p);
  }
}

}  // namespace
