// Release-mode free-list hardening: a free block's link is XOR-encoded, so a stray write into it
// (an overflow from the neighbouring block, a write through a dangling pointer) makes the
// allocator fault instead of handing out the memory the corrupted link points to.
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

// A class nothing else in this process uses, so the next block in the slab is a staged free
// block whose first word is the link the fast path will follow.
constexpr std::size_t kSize = 700;  // class 768
constexpr std::size_t kClassSize = 768;

TEST(hardening, overflowing_a_pointer_into_the_next_block_faults) {
  auto* first = static_cast<char*>(sp_malloc(kSize));
  static char target[64];  // what the stray write points the link at
  EXPECT_DEATH(
      {
        const auto stray = reinterpret_cast<std::uintptr_t>(target);
        std::memcpy(first + kClassSize, &stray, sizeof(stray));  // overflow into the next block
        void* second = sp_malloc(kSize);                         // the block that was overwritten
        void* third = sp_malloc(kSize);  // follows the corrupted link: faults before returning
        // Reaching here is a failure (exit 0 is not a death): unencoded links would even have
        // handed out `target` as `third`.
        std::fprintf(stderr, "no fault: %p %p (target %p)\n", second, third,
                     static_cast<void*>(target));
        std::exit(0);
      },
      "");
  sp_free(first);
}

TEST(hardening, zeroing_a_link_faults_rather_than_ending_the_list_quietly) {
  auto* first = static_cast<char*>(sp_malloc(kSize));
  EXPECT_DEATH(
      {
        std::memset(first + kClassSize, 0, 16);
        sp_malloc(kSize);
        sp_malloc(kSize);
        std::exit(0);
      },
      "");
  sp_free(first);
}

}  // namespace
