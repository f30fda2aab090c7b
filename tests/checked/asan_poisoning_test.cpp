// In ASan builds slabpool poisons free blocks (past their link word) and the uncarved space of
// its slabs, so ASan catches a use-after-free or an overflow inside slabpool memory.
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>

#include "base/attributes.hpp"

namespace {

TEST(asan_poisoning, use_after_free_is_caught) {
  if (!slabpool::detail::kAsan) GTEST_SKIP() << "only meaningful in an ASan build";
  auto* p = static_cast<volatile char*>(sp_malloc(64));
  p[20] = 1;
  sp_free(const_cast<char*>(p));
  EXPECT_DEATH(p[20] = 2, "use-after-poison");
}

TEST(asan_poisoning, overflow_into_the_next_free_block_is_caught) {
  if (!slabpool::detail::kAsan) GTEST_SKIP() << "only meaningful in an ASan build";
  // A class nothing else uses: the block after this one is free (or not yet carved).
  auto* p = static_cast<volatile char*>(sp_malloc(3000));
  const std::size_t usable = sp_usable_size(const_cast<char*>(p));
  p[usable - 1] = 1;  // the whole usable size is addressable
  EXPECT_DEATH(p[usable + 16] = 2, "use-after-poison");
  sp_free(const_cast<char*>(p));
}

TEST(asan_poisoning, large_blocks_are_poisoned_after_free) {
  if (!slabpool::detail::kAsan) GTEST_SKIP() << "only meaningful in an ASan build";
  auto* p = static_cast<volatile char*>(sp_malloc(1 << 20));
  p[1000] = 1;
  sp_free(const_cast<char*>(p));
  EXPECT_DEATH(p[1000] = 2, "use-after-poison");
}

}  // namespace
