// sp_realloc / slabpool::realloc: contents survive every move between classes, large and huge
// blocks; small changes stay in place; failures leave the old block untouched.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <new>
#include <vector>

#include "slabpool/slabpool.h"
#include "slabpool/slabpool.hpp"
#include "unit_test_util.hpp"

namespace {

using namespace sp_test;

// Crosses every kind of boundary: 16-byte steps, geometric classes, the largest class, large
// in-segment blocks and huge mappings (a regular segment holds at most 63 units of 64 KiB).
const std::vector<std::size_t>& ladder() {
  static const std::vector<std::size_t> sizes = {1,          15,       16,          17,
                                                 100,        128,      129,         1000,
                                                 4096,       70000,    128 * kKiB,  128 * kKiB + 1,
                                                 300 * kKiB, 1 * kMiB, 4032 * kKiB, 4032 * kKiB + 1,
                                                 8 * kMiB,   20 * kMiB};
  return sizes;
}

// Reallocates p from `old_size` to `new_size` and checks the kept prefix and the new usable size.
// The pattern depends on the seed only, so it survives moves.
void* step(void* p, std::size_t old_size, std::size_t new_size, std::uint64_t seed) {
  void* q = sp_realloc(p, new_size);
  EXPECT_NE(q, nullptr) << old_size << " -> " << new_size;
  if (q == nullptr) return p;
  EXPECT_GE(sp_usable_size(q), new_size) << old_size << " -> " << new_size;
  EXPECT_TRUE(is_aligned(q, 16));
  const std::size_t kept = old_size < new_size ? old_size : new_size;
  EXPECT_EQ(check_pattern(q, kept, seed), kPatternOk) << old_size << " -> " << new_size;
  fill_pattern(q, new_size, seed);
  return q;
}

TEST(Realloc, ContentsSurviveGrowingThroughEveryBoundary) {
  const std::vector<std::size_t>& sizes = ladder();
  void* p = sp_malloc(sizes[0]);
  ASSERT_NE(p, nullptr);
  fill_pattern(p, sizes[0], 11);
  for (std::size_t i = 1; i < sizes.size(); ++i) p = step(p, sizes[i - 1], sizes[i], 11);
  sp_free(p);
}

TEST(Realloc, ContentsSurviveShrinkingThroughEveryBoundary) {
  const std::vector<std::size_t>& sizes = ladder();
  void* p = sp_malloc(sizes.back());
  ASSERT_NE(p, nullptr);
  fill_pattern(p, sizes.back(), 12);
  for (std::size_t i = sizes.size() - 1; i > 0; --i) p = step(p, sizes[i], sizes[i - 1], 12);
  sp_free(p);
}

TEST(Realloc, ContentsSurviveJumpsBetweenAnySizes) {
  const std::vector<std::size_t>& sizes = ladder();
  for (std::size_t from : sizes) {
    for (std::size_t to : sizes) {
      void* p = sp_malloc(from);
      ASSERT_NE(p, nullptr);
      fill_pattern(p, from, from ^ to);
      p = step(p, from, to, from ^ to);
      sp_free(p);
    }
  }
}

TEST(Realloc, SmallChangesStayInPlace) {
  // 20 B lives in the 32 B class: growing to 32 or shrinking to 17 needs no move.
  void* p = sp_malloc(20);
  ASSERT_NE(p, nullptr);
  fill_pattern(p, 20, 1);
  EXPECT_EQ(sp_realloc(p, 30), p);
  EXPECT_EQ(sp_realloc(p, 32), p);
  EXPECT_EQ(sp_realloc(p, 17), p);
  EXPECT_EQ(check_pattern(p, 17, 1), kPatternOk);
  sp_free(p);

  // 900 B is served by a 1024 B block.
  void* q = sp_malloc(900);
  ASSERT_NE(q, nullptr);
  const std::size_t usable = sp_usable_size(q);
  fill_pattern(q, 900, 2);
  EXPECT_EQ(sp_realloc(q, usable), q);
  EXPECT_EQ(sp_realloc(q, 600), q);
  EXPECT_EQ(check_pattern(q, 600, 2), kPatternOk);
  sp_free(q);

  // A large block shrinking a little keeps its pages.
  void* r = sp_malloc(1 * kMiB);
  ASSERT_NE(r, nullptr);
  fill_pattern(r, 1 * kMiB, 3);
  EXPECT_EQ(sp_realloc(r, 900 * kKiB), r);
  EXPECT_EQ(check_pattern(r, 900 * kKiB, 3), kPatternOk);
  sp_free(r);
}

TEST(Realloc, LargeShrinkMovesToASmallBlock) {
  // Keeping a 1 MiB block for 100 bytes would pin the memory: the block must move.
  void* p = sp_malloc(1 * kMiB);
  ASSERT_NE(p, nullptr);
  fill_pattern(p, 100, 4);
  void* q = sp_realloc(p, 100);
  ASSERT_NE(q, nullptr);
  EXPECT_LT(sp_usable_size(q), 1 * kMiB / 2);
  EXPECT_EQ(check_pattern(q, 100, 4), kPatternOk);
  sp_free(q);
}

TEST(Realloc, NullActsAsMalloc) {
  for (std::size_t size : {std::size_t{0}, std::size_t{50}, 200 * kKiB, 6 * kMiB}) {
    void* p = sp_realloc(nullptr, size);
    ASSERT_NE(p, nullptr) << "size " << size;
    EXPECT_GE(sp_usable_size(p), size);
    fill_pattern(p, size, 5);
    sp_free(p);
    void* q = slabpool::realloc(nullptr, size);
    ASSERT_NE(q, nullptr);
    slabpool::free(q);
  }
}

TEST(Realloc, ZeroSizeFreesAndReturnsNull) {
  // Documented as glibc's behaviour. If the block were not freed, 1 MiB blocks would pile up.
  const std::size_t before = mapped_bytes();
  for (int i = 0; i < 500; ++i) {
    void* p = sp_malloc(1 * kMiB);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(sp_realloc(p, 0), nullptr);
    void* q = slabpool::malloc(2 * kMiB);
    EXPECT_EQ(slabpool::realloc(q, 0), nullptr) << "C++ realloc(p, 0) must not throw";
    void* s = sp_malloc(40);
    EXPECT_EQ(sp_realloc(s, 0), nullptr);
  }
  EXPECT_LE(mapped_bytes(), before + 8 * kMiB);
}

TEST(Realloc, FailureLeavesTheBlockUntouched) {
  for (std::size_t size : {std::size_t{100}, 200 * kKiB, 6 * kMiB}) {
    void* p = sp_malloc(size);
    ASSERT_NE(p, nullptr);
    const std::size_t usable = sp_usable_size(p);
    fill_pattern(p, usable, size);
    for (std::size_t bad :
         {SIZE_MAX, SIZE_MAX - 16, std::size_t{PTRDIFF_MAX}, std::size_t{PTRDIFF_MAX} + 1}) {
      errno = 0;
      EXPECT_EQ(sp_realloc(p, bad), nullptr) << size << " -> " << bad;
      EXPECT_EQ(errno, ENOMEM) << size << " -> " << bad;
      EXPECT_THROW(slabpool::realloc(p, bad), std::bad_alloc) << size << " -> " << bad;
      EXPECT_EQ(sp_usable_size(p), usable);
      EXPECT_EQ(check_pattern(p, usable, size), kPatternOk) << size << " -> " << bad;
    }
    // Still a valid block: it can grow and be freed.
    void* q = sp_realloc(p, size * 2);
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(check_pattern(q, usable < size * 2 ? usable : size * 2, size), kPatternOk);
    sp_free(q);
  }
}

TEST(Realloc, AlignedBlocksKeepContents) {
  void* p = sp_aligned_alloc(4096, 5000);
  ASSERT_NE(p, nullptr);
  fill_pattern(p, 5000, 9);
  void* q = sp_realloc(p, 50000);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(check_pattern(q, 5000, 9), kPatternOk);
  sp_free(q);
}

}  // namespace
