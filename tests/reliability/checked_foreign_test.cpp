// Checked mode and pointers that were never slabpool's: reported with a message naming the
// pointer, never a crash, even when the memory below the pointer is not mapped.
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>

namespace {

const int g_checked_on = sp_option_set(SP_OPTION_CHECKED, 1);

// A pointer into a mapping whose 4 MiB-aligned start (where a segment header would be) is not
// mapped: reading "its header" faults.
void* pointer_above_a_hole() {
  constexpr std::size_t kSegment = std::size_t{4} << 20;
  auto* region = static_cast<char*>(
      mmap(nullptr, 3 * kSegment, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (region == MAP_FAILED) std::abort();
  const auto base = (reinterpret_cast<std::uintptr_t>(region) + kSegment - 1) & ~(kSegment - 1);
  munmap(reinterpret_cast<void*>(base), 64 * 1024);  // the "header" page range
  return reinterpret_cast<char*>(base) + 128 * 1024 + 16;
}

TEST(checked_foreign, is_on) {
  ASSERT_EQ(g_checked_on, 0);
  sp_free(sp_malloc(8));
  EXPECT_EQ(sp_option_get(SP_OPTION_CHECKED), 1);
}

// Checked mode starts with the first allocation, as in any program that frees something.
class checked_foreign_death : public ::testing::Test {
 protected:
  void SetUp() override { sp_free(sp_malloc(8)); }
};

TEST_F(checked_foreign_death, free_of_a_pointer_above_unmapped_memory_is_reported) {
  EXPECT_DEATH(sp_free(pointer_above_a_hole()), "free\\(0x[0-9a-f]+\\): not a block slabpool");
}

TEST_F(checked_foreign_death, sized_free_of_a_system_malloc_block_is_reported) {
  EXPECT_DEATH(
      {
        void* p = std::malloc(64);
        sp_free_sized(p, 64);
      },
      "not a block slabpool handed out");
}

TEST_F(checked_foreign_death, free_of_a_stack_address_is_reported) {
  EXPECT_DEATH(
      {
        int local = 0;
        sp_free(&local);
      },
      "not a block slabpool handed out");
}

TEST_F(checked_foreign_death, usable_size_of_a_foreign_pointer_is_reported) {
  EXPECT_DEATH(sp_usable_size(pointer_above_a_hole()), "usable_size\\(0x[0-9a-f]+\\): not a block");
}

TEST_F(checked_foreign_death, realloc_of_a_foreign_pointer_is_reported) {
  EXPECT_DEATH(sp_realloc(pointer_above_a_hole(), 100), "not a block slabpool handed out");
}

}  // namespace
