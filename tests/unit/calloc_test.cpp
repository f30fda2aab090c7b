// sp_calloc / slabpool::calloc: memory is zero even when it is a reused, dirtied block, and n*size
// overflow is refused.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "slabpool/slabpool.h"
#include "slabpool/slabpool.hpp"
#include "unit_test_util.hpp"

namespace {

using namespace sp_test;

// Dirties a block of `bytes`, frees it, then callocs the same size: the allocator hands back
// freshly reused memory, which must read as zero.
void expect_zeroed_after_reuse(std::size_t n, std::size_t size, int rounds) {
  const std::size_t bytes = n * size;
  for (int round = 0; round < rounds; ++round) {
    void* dirty = sp_malloc(bytes);
    ASSERT_NE(dirty, nullptr);
    std::memset(dirty, 0xa5, sp_usable_size(dirty));
    sp_free(dirty);
    auto* p = static_cast<unsigned char*>(sp_calloc(n, size));
    ASSERT_NE(p, nullptr) << "n " << n << " size " << size;
    EXPECT_GE(sp_usable_size(p), bytes);
    ASSERT_EQ(first_nonzero(p, bytes), kPatternOk)
        << "calloc(" << n << ", " << size << ") round " << round << " reused " << (p == dirty);
    std::memset(p, 0x5a, bytes);  // dirty it again for the next round
    sp_free(p);
  }
}

TEST(Calloc, SmallBlocksAreZeroedOnReuse) {
  for (std::size_t size : {std::size_t{1}, std::size_t{16}, std::size_t{24}, std::size_t{100},
                           std::size_t{1000}, std::size_t{4000}, 100 * kKiB, 128 * kKiB}) {
    expect_zeroed_after_reuse(1, size, 50);
  }
  expect_zeroed_after_reuse(7, 13, 50);
  expect_zeroed_after_reuse(100, 100, 50);
}

TEST(Calloc, LargeBlocksAreZeroedOnReuse) {
  // In-segment large blocks are recycled without a syscall, so they come back dirty.
  for (std::size_t size : {128 * kKiB + 1, 300 * kKiB, 1 * kMiB, 3 * kMiB}) {
    expect_zeroed_after_reuse(1, size, 20);
  }
  expect_zeroed_after_reuse(1024, 1024, 20);
}

TEST(Calloc, HugeBlocksAreZeroed) {
  expect_zeroed_after_reuse(1, 8 * kMiB, 4);
  expect_zeroed_after_reuse(4, 5 * kMiB, 2);
}

TEST(Calloc, ZeroedWhileOtherBlocksStayLive) {
  // Blocks carved next to dirty neighbours, not only the LIFO head of a free list.
  std::vector<void*> dirty;
  for (int i = 0; i < 256; ++i) {
    void* p = sp_malloc(48);
    ASSERT_NE(p, nullptr);
    std::memset(p, 0xff, 48);
    dirty.push_back(p);
  }
  for (std::size_t i = 0; i < dirty.size(); i += 2) sp_free(dirty[i]);
  std::vector<void*> zeroed;
  for (int i = 0; i < 256; ++i) {
    void* p = sp_calloc(3, 16);
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(first_nonzero(p, 48), kPatternOk) << "block " << i;
    zeroed.push_back(p);
  }
  for (std::size_t i = 1; i < dirty.size(); i += 2) sp_free(dirty[i]);
  for (void* p : zeroed) sp_free(p);
}

TEST(Calloc, ZeroCountOrSizeReturnsUniqueBlocks) {
  void* a = sp_calloc(0, 16);
  void* b = sp_calloc(16, 0);
  void* c = sp_calloc(0, 0);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_NE(a, c);
  sp_free(a);
  sp_free(b);
  sp_free(c);
}

TEST(Calloc, OverflowFailsWithEnomem) {
  const std::size_t half = (SIZE_MAX >> 1) + 1;
  const std::size_t cases[][2] = {
      {SIZE_MAX, SIZE_MAX},
      {half, 2},
      {2, half},
      {std::size_t{1} << 32, std::size_t{1} << 32},
      {SIZE_MAX / 3 + 1, 3},
      {1, SIZE_MAX},  // no overflow, just too big
      {std::size_t{PTRDIFF_MAX}, 1},
  };
  for (const auto& c : cases) {
    errno = 0;
    EXPECT_EQ(sp_calloc(c[0], c[1]), nullptr) << c[0] << " x " << c[1];
    EXPECT_EQ(errno, ENOMEM) << c[0] << " x " << c[1];
    EXPECT_THROW(slabpool::calloc(c[0], c[1]), std::bad_alloc) << c[0] << " x " << c[1];
  }
}

TEST(Calloc, CppCallocZeroes) {
  for (std::size_t size : {std::size_t{40}, 2000 * std::size_t{1}, 500 * kKiB}) {
    void* dirty = slabpool::malloc(size);
    std::memset(dirty, 0x77, size);
    slabpool::free(dirty);
    void* p = slabpool::calloc(1, size);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(first_nonzero(p, size), kPatternOk) << "size " << size;
    slabpool::free(p);
  }
}

}  // namespace
