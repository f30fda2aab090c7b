// Small blocks: a heap reuses the blocks freed into its slabs before it touches memory it has not
// used yet (issue 12), and a slab stages its blocks a page at a time, so the memory a heap holds
// follows what the program uses.
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>

#include <algorithm>
#include <cstddef>
#include <set>
#include <vector>

namespace {

std::size_t slab_resident() {
  sp_stats s;
  sp_stats_get(&s);
  return s.slab_resident;
}

TEST(block_reuse, blocks_freed_into_an_older_slab_come_before_fresh_ones_of_the_current_slab) {
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
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
  const std::size_t resident_before = slab_resident();
  // Allocating as many again takes exactly the freed blocks and touches no new page.
  std::vector<void*> again(freed.size());
  for (void*& p : again) p = sp_malloc(256);
  std::size_t reused = 0;
  for (void* p : again) reused += freed.count(p);
  // The blocks the current slab has staged already (at most a page: 16) go first.
  EXPECT_GE(reused, freed.size() - 16) << "every other allocation took a freed block";
  EXPECT_EQ(slab_resident(), resident_before) << "no fresh block was carved";
  for (void* p : again) sp_free(p);
  for (void* p : blocks) sp_free(p);
}

TEST(block_reuse, a_slab_stages_a_page_of_small_blocks_at_a_time) {
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  // Class 48: the first 4096 / 48 blocks rounded up share the slab's first page (and the start
  // of its second); the next allocation stages the next page.
  void* first = sp_malloc(48);
  const std::size_t one_page = slab_resident();
  std::vector<void*> more;
  for (int i = 0; i < 85; ++i) more.push_back(sp_malloc(48));
  EXPECT_EQ(slab_resident(), one_page) << "the first carve staged 86 blocks";
  more.push_back(sp_malloc(48));
  EXPECT_GT(slab_resident(), one_page) << "the 87th block needed a carve";
  EXPECT_LE(slab_resident() - one_page, 2u * 4096);
  sp_free(first);
  for (void* p : more) sp_free(p);
}

}  // namespace
