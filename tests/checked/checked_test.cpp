// Checked mode: every misuse of a block is reported on stderr, naming the operation, the
// pointer and the size class, and the process aborts; correct programs run unchanged.
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "base/attributes.hpp"

namespace {

// Checked mode must be chosen before the first allocation: a static initialiser runs before any
// test allocates (gtest itself uses the system malloc).
const int g_checked_on = sp_option_set(SP_OPTION_CHECKED, 1);

TEST(checked, is_on_and_fixed_after_the_first_allocation) {
  ASSERT_EQ(g_checked_on, 0);
  sp_free(sp_malloc(1));
  EXPECT_EQ(sp_option_get(SP_OPTION_CHECKED), 1);
  EXPECT_EQ(sp_option_set(SP_OPTION_CHECKED, 0), EINVAL) << "blocks already carry trailers";
  EXPECT_EQ(sp_option_set(SP_OPTION_CHECKED, 1), 0);
}

TEST(checked, correct_programs_run_unchanged) {
  std::vector<char*> blocks;
  for (std::size_t size : {0, 1, 15, 16, 40, 100, 1000, 5000, 70000, 200000, 5000000}) {
    auto* p = static_cast<char*>(sp_malloc(size));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(sp_usable_size(p), size) << "checked mode hands out exactly what was asked";
    std::memset(p, 0x11, size);
    blocks.push_back(p);
  }
  auto* z = static_cast<char*>(sp_calloc(10, 30));
  for (int i = 0; i < 300; ++i) ASSERT_EQ(z[i], 0);
  auto* r = static_cast<char*>(sp_realloc(sp_malloc(10), 20000));
  auto* a = static_cast<char*>(sp_aligned_alloc(4096, 100));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a) % 4096, 0u);
  std::thread([&] {
    for (char* p : blocks) sp_free(p);  // remote frees, checked too
  }).join();
  sp_free_sized(z, 300);
  sp_free(r);
  sp_free(a);
  for (int i = 0; i < 20000; ++i) sp_free(sp_malloc(static_cast<std::size_t>(i % 3000)));
}

using checked_death = ::testing::Test;

TEST(checked_death, double_free_small) {
  void* p = sp_malloc(40);
  sp_free(p);
  EXPECT_DEATH(sp_free(p),
               "slabpool: free\\(0x[0-9a-f]+\\): double free \\[block of the 64-byte class\\]");
}

TEST(checked_death, double_free_after_other_allocations) {
  void* p = sp_malloc(100);
  sp_free(p);
  for (int i = 0; i < 1000; ++i) sp_free(sp_malloc(100));  // the quarantine keeps p aside
  EXPECT_DEATH(sp_free(p), "double free");
}

TEST(checked_death, double_free_large) {
  void* p = sp_malloc(300000);
  sp_free(p);
  EXPECT_DEATH(sp_free(p), "double free or never allocated");
}

TEST(checked_death, interior_pointer) {
  auto* p = static_cast<char*>(sp_malloc(100));
  EXPECT_DEATH(sp_free(p + 8), "interior pointer, 8 bytes into the block");
  auto* big = static_cast<char*>(sp_malloc(1 << 20));
  EXPECT_DEATH(sp_free(big + 4096), "interior pointer into a large block");
}

TEST(checked_death, pointer_never_handed_out) {
  auto* p = static_cast<char*>(sp_malloc(48));
  // Far beyond what the slab has carved: inside slabpool's memory, never a block.
  EXPECT_DEATH(sp_free(p + 64 * 900), "never allocated|double free or never allocated");
}

// Under ASan, slabpool also poisons the pad, so ASan stops the faulty write itself.
constexpr const char* with_asan(const char* checked_report) {
  return slabpool::detail::kAsan ? "use-after-poison" : checked_report;
}

TEST(checked_death, write_past_the_end) {
  auto* p = static_cast<volatile char*>(sp_malloc(40));
  EXPECT_DEATH(
      {
        p[40] = 'x';
        sp_free(const_cast<char*>(p));
      },
      with_asan("write past the end of a 40-byte block \\(at offset 40\\)"));
  auto* big = static_cast<char*>(sp_malloc(300000));
  big[300003] = 'x';
  EXPECT_DEATH(sp_free(big), "write past the end of a 300000-byte block \\(at offset 300003\\)");
}

TEST(checked_death, sized_free_with_the_wrong_size) {
  void* p = sp_malloc(40);
  EXPECT_DEATH(sp_free_sized(p, 48), "sized free with size 48, but 40 bytes were allocated");
  sp_free_sized(p, 40);  // the right size passes
}

TEST(checked_death, overwritten_trailer) {
  auto* p = static_cast<volatile char*>(sp_malloc(40));
  EXPECT_DEATH(
      {
        for (int i = 0; i < 64; ++i) p[i] = 0;  // runs over the pad and the size word
        sp_free(const_cast<char*>(p));
      },
      with_asan("trailer overwritten|write past the end"));
}

}  // namespace
