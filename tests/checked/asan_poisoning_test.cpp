// In ASan builds slabpool poisons free blocks (past their link word) and the uncarved space of
// its slabs, so ASan catches a use-after-free or an overflow inside slabpool memory.
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>

#include <sys/mman.h>

#include <cstring>

#include "base/attributes.hpp"
#include "platform/platform.hpp"

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

// Memory slabpool gives back to the kernel leaves no poison behind: the next mapping at those
// addresses (in the ThreadChurn test, a new thread's stack and TLS) is someone else's, and
// clang 14's ASan does not clear the shadow of an unmapped range itself.
constexpr std::size_t kRange = std::size_t{4} << 20;

// Maps [p, p + kRange) again, exactly there, and writes all of it through ASan's checked memset:
// a use-after-poison if the shadow still says slabpool's free memory.
void map_again_and_write(void* p) {
  void* q = mmap(p, kRange, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ASSERT_EQ(q, p) << "the range was not free right after slabpool unmapped it";
  std::memset(q, 1, kRange);
  munmap(q, kRange);
}

TEST(asan_poisoning, unmapped_memory_is_left_unpoisoned) {
  if (!slabpool::detail::kAsan) GTEST_SKIP() << "only meaningful in an ASan build";
  using slabpool::detail::os;
  void* p = os::map_aligned(kRange, kRange);
  ASSERT_NE(p, nullptr);
  slabpool::detail::asan_poison(p, kRange);  // as free blocks and uncarved slab space are
  os::unmap(p, kRange);
  map_again_and_write(p);
}

TEST(asan_poisoning, the_range_a_huge_block_moved_from_is_left_unpoisoned) {
  if (!slabpool::detail::kAsan) GTEST_SKIP() << "only meaningful in an ASan build";
  using slabpool::detail::os;
  void* p = os::map_aligned(kRange, kRange);
  ASSERT_NE(p, nullptr);
  slabpool::detail::asan_poison(p, kRange);
  void* moved = os::remap_aligned(p, kRange, 2 * kRange, kRange);
  ASSERT_NE(moved, nullptr);
  ASSERT_NE(moved, p);
  os::unmap(moved, 2 * kRange);
  map_again_and_write(p);
}

}  // namespace
