// Small blocks: a heap reuses the blocks freed into its slabs before it touches memory it has not
// used yet (issue 12), and a slab stages its blocks a page at a time, so the memory a heap holds
// follows what the program uses.
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>

#include <algorithm>
#include <cstddef>
#include <set>
#include <vector>

#include "common/fake_clock.hpp"

namespace {

// Touched bytes of the slabs of the class with blocks of `block_size` bytes.
std::size_t class_resident(std::size_t block_size) {
  sp_stats s;
  sp_stats_get(&s);
  for (const sp_class_stats& c : s.classes) {
    if (c.block_size == block_size) return c.resident;
  }
  return 0;
}

// No trim pass may run in the middle of a test (with the background thread off, the slow path
// still runs them when the clock moves on): the fake clock stands still.
class block_reuse : public ::testing::Test {
 protected:
  void SetUp() override {
    sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
    sp_set_clock(sp_test::fake_clock);
  }
  void TearDown() override { sp_set_clock(nullptr); }
};

TEST_F(block_reuse, blocks_freed_into_an_older_slab_come_before_fresh_ones_of_the_current_slab) {
  // 256-byte blocks, 256 to a 64 KiB slab: 600 fill two slabs and start a third, whose fresh
  // blocks are still uncarved.
  std::vector<void*> blocks(600);
  for (void*& p : blocks) p = sp_malloc(256);
  // Free half of the oldest blocks (every other one, so no slab empties and goes back).
  std::set<void*> freed;
  for (std::size_t i = 0; i < 400; i += 2) {
    freed.insert(blocks[i]);
    sp_free(blocks[i]);
    blocks[i] = nullptr;
  }
  const std::size_t resident_before = class_resident(256);
  // Allocating as many again takes exactly the freed blocks and touches no new page.
  std::vector<void*> again(freed.size());
  for (void*& p : again) p = sp_malloc(256);
  std::size_t reused = 0;
  for (void* p : again) reused += freed.count(p);
  // The blocks the current slab has staged already (at most a page: 16) go first.
  EXPECT_GE(reused, freed.size() - 16) << "every other allocation took a freed block";
  EXPECT_EQ(class_resident(256), resident_before) << "no fresh block was carved";
  for (void* p : again) sp_free(p);
  for (void* p : blocks) sp_free(p);
}

TEST_F(block_reuse, a_slab_stages_a_page_of_small_blocks_at_a_time) {
  // Class 48: the first 4096 / 48 blocks rounded up share the slab's first page (and the start
  // of its second); the next allocation stages the next page.
  void* first = sp_malloc(48);
  const std::size_t one_page = class_resident(48);
  std::vector<void*> more;
  for (int i = 0; i < 85; ++i) more.push_back(sp_malloc(48));
  EXPECT_EQ(class_resident(48), one_page) << "the first carve staged 86 blocks";
  more.push_back(sp_malloc(48));
  EXPECT_GT(class_resident(48), one_page) << "the 87th block needed a carve";
  EXPECT_LE(class_resident(48) - one_page, 2u * 4096);
  sp_free(first);
  for (void* p : more) sp_free(p);
}

// Empty slabs a thread keeps through the decay delay (for their class to refill) go back to the
// pool as soon as the thread needs a new slab of another class: the new one is cut from their
// memory, not from memory never used.
TEST_F(block_reuse, empty_slabs_kept_for_the_delay_serve_a_new_class_first) {
  sp_option_set(SP_OPTION_THREAD_CACHE_BYTES, 64LL << 20);  // the budget keeps them all
  std::vector<void*> blocks(2000);
  for (void*& p : blocks) p = sp_malloc(2000);  // class 2048: 63 slabs
  for (void* p : blocks) sp_free(p);
  sp_trim_decay();  // a pass sees them empty and keeps them
  sp_stats kept{};
  sp_stats_get(&kept);
  ASSERT_GT(kept.empty_slab_bytes, 2u << 20);
  for (void*& p : blocks) p = sp_malloc(1500);  // class 1536: needs about as many new slabs
  sp_stats after{};
  sp_stats_get(&after);
  EXPECT_LT(after.empty_slab_bytes, kept.empty_slab_bytes / 4) << "the kept slabs went back";
  EXPECT_EQ(after.mapped, kept.mapped) << "and the new class's slabs were cut from them";
  for (void* p : blocks) sp_free(p);
}

}  // namespace
