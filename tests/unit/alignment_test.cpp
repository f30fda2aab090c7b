// sp_aligned_alloc / slabpool::aligned_alloc: every power of two up to SP_MAX_ALIGNMENT across the
// small, large and huge paths, and the invalid alignments.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <new>
#include <set>
#include <vector>

#include "slabpool/slabpool.h"
#include "slabpool/slabpool.hpp"
#include "unit_test_util.hpp"

namespace {

using namespace sp_test;

struct aligned_block {
  void* p;
  std::size_t usable;
  std::uint64_t seed;
};

std::vector<std::size_t> sizes_for(std::size_t alignment) {
  return {1, 100, alignment - 1, alignment, alignment + 1, 200 * kKiB, 5 * kMiB};
}

TEST(Alignment, SweepEveryPowerOfTwo) {
  ASSERT_GE(SP_MAX_ALIGNMENT, std::size_t{1} << 20) << "issue 2: alignments up to at least 1 MiB";
  for (std::size_t alignment = 1; alignment <= SP_MAX_ALIGNMENT; alignment *= 2) {
    // All blocks of one alignment stay live together, so overlapping blocks corrupt a pattern.
    std::vector<aligned_block> blocks;
    for (std::size_t size : sizes_for(alignment)) {
      SCOPED_TRACE(::testing::Message() << "alignment " << alignment << " size " << size);
      void* p = sp_aligned_alloc(alignment, size);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(is_aligned(p, alignment)) << p;
      EXPECT_TRUE(is_aligned(p, 16)) << "never less than malloc's alignment: " << p;
      const std::size_t usable = sp_usable_size(p);
      EXPECT_GE(usable, size);
      EXPECT_TRUE(sp_owns(p));
      const std::uint64_t seed = address_seed(p, alignment ^ size);
      fill_pattern(p, usable, seed);
      blocks.push_back({p, usable, seed});
    }
    for (const aligned_block& b : blocks) {
      EXPECT_EQ(check_pattern(b.p, b.usable, b.seed), kPatternOk)
          << "alignment " << alignment << " block " << b.p << " usable " << b.usable;
      sp_free(b.p);
    }
  }
}

TEST(Alignment, CppSweep) {
  for (std::size_t alignment = 1; alignment <= SP_MAX_ALIGNMENT; alignment *= 4) {
    for (std::size_t size : {std::size_t{8}, alignment + 1, 300 * kKiB}) {
      void* p = slabpool::aligned_alloc(alignment, size);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(is_aligned(p, alignment)) << "alignment " << alignment << " size " << size;
      EXPECT_GE(slabpool::usable_size(p), size);
      fill_pattern(p, slabpool::usable_size(p), 3);
      slabpool::free_sized(p, size);
    }
  }
}

TEST(Alignment, ManyAlignedBlocksAreDistinct) {
  // Aligned small requests share slabs with other classes; a burst must still hand out distinct,
  // correctly aligned blocks.
  for (std::size_t alignment :
       {std::size_t{32}, std::size_t{256}, 4 * kKiB, 64 * kKiB, 256 * kKiB}) {
    std::vector<aligned_block> blocks;
    for (int i = 0; i < 40; ++i) {
      void* p = sp_aligned_alloc(alignment, 48);
      ASSERT_NE(p, nullptr);
      ASSERT_TRUE(is_aligned(p, alignment)) << "alignment " << alignment << " p " << p;
      const std::uint64_t seed = address_seed(p, i);
      fill_pattern(p, 48, seed);
      blocks.push_back({p, 48, seed});
    }
    for (const aligned_block& b : blocks) {
      EXPECT_EQ(check_pattern(b.p, b.usable, b.seed), kPatternOk) << "alignment " << alignment;
      sp_free(b.p);
    }
  }
}

TEST(Alignment, ZeroSizeIsAValidDistinctBlock) {
  // aligned_alloc(a, 0) must give a unique pointer like malloc(0), at every alignment. Blocks of
  // other sizes stay live alongside, since a zero-length span could alias their memory.
  for (std::size_t alignment = 1; alignment <= SP_MAX_ALIGNMENT; alignment *= 2) {
    SCOPED_TRACE(::testing::Message() << "alignment " << alignment);
    void* neighbour = sp_aligned_alloc(alignment, 1000);
    ASSERT_NE(neighbour, nullptr);
    fill_pattern(neighbour, 1000, alignment);
    void* a = sp_aligned_alloc(alignment, 0);
    void* b = sp_aligned_alloc(alignment, 0);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_TRUE(is_aligned(a, alignment)) << a;
    EXPECT_TRUE(is_aligned(b, alignment)) << b;
    // On failure leak the blocks: freeing aliased blocks would corrupt the allocator and hide
    // the first symptom behind a crash.
    ASSERT_NE(a, b) << "two live zero-size aligned blocks share an address";
    ASSERT_NE(a, neighbour);
    ASSERT_NE(b, neighbour);
    EXPECT_GT(sp_usable_size(a), 0u) << "the block behind " << a << " has no slab";
    EXPECT_EQ(check_pattern(neighbour, 1000, alignment), kPatternOk);
    sp_free(a);
    sp_free(b);
    sp_free(neighbour);
  }
}

TEST(Alignment, InvalidAlignmentFailsWithEinval) {
  for (std::size_t alignment : {std::size_t{0}, std::size_t{3}, std::size_t{24}, std::size_t{48},
                                std::size_t{1000}, SP_MAX_ALIGNMENT + 1, SP_MAX_ALIGNMENT * 2,
                                std::size_t{1} << 40, std::size_t{1} << 63, SIZE_MAX}) {
    for (std::size_t size : {std::size_t{0}, std::size_t{16}, std::size_t{1} * kMiB}) {
      errno = 0;
      EXPECT_EQ(sp_aligned_alloc(alignment, size), nullptr)
          << "alignment " << alignment << " size " << size;
      EXPECT_EQ(errno, EINVAL) << "alignment " << alignment << " size " << size;
      EXPECT_THROW(slabpool::aligned_alloc(alignment, size), std::bad_alloc)
          << "alignment " << alignment;
    }
  }
}

TEST(Alignment, OversizedRequestFailsWithEnomem) {
  for (std::size_t alignment : {std::size_t{8}, std::size_t{64}, 128 * kKiB, SP_MAX_ALIGNMENT}) {
    for (std::size_t size : {SIZE_MAX, SIZE_MAX - alignment, std::size_t{PTRDIFF_MAX}}) {
      errno = 0;
      EXPECT_EQ(sp_aligned_alloc(alignment, size), nullptr)
          << "alignment " << alignment << " size " << size;
      EXPECT_EQ(errno, ENOMEM) << "alignment " << alignment << " size " << size;
      EXPECT_THROW(slabpool::aligned_alloc(alignment, size), std::bad_alloc);
    }
  }
}

}  // namespace
