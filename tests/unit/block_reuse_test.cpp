// Small blocks: a heap reuses the blocks freed into its slabs before it touches memory it has not
// used yet (issue 12), and a slab stages its blocks a page at a time, so the memory a heap holds
// follows what the program uses.
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "common/fake_clock.hpp"

namespace {

// The stats of the class with blocks of `block_size` bytes (all zero when there is none).
sp_class_stats class_stats(std::size_t block_size) {
  sp_stats s;
  sp_stats_get(&s);
  for (const sp_class_stats& c : s.classes) {
    if (c.block_size == block_size) return c;
  }
  return {};
}

// Touched bytes of the slabs of the class with blocks of `block_size` bytes.
std::size_t class_resident(std::size_t block_size) {
  return class_stats(block_size).resident;
}

// Slabs of the class with blocks of `block_size` bytes.
std::size_t class_slabs(std::size_t block_size) {
  return class_stats(block_size).slabs;
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

TEST_F(block_reuse, a_growing_class_with_random_frees_fills_its_slabs_before_taking_new_ones) {
  // The shape of a server's growing table (redis's values): two allocations, then one random
  // live block freed. The current slab stops being current whenever blocks were freed into
  // another, with pages of it never used; those must be used before the class takes new slabs.
  constexpr std::size_t kSize = 200;  // class 224: 292 blocks to a 64 KiB slab
  constexpr std::size_t kBlocksPerSlab = (64 * 1024) / 224;
  std::vector<void*> live;
  std::uint64_t state = 12345;
  auto next_random = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::size_t>(state >> 33);
  };
  for (int i = 0; i < 60000; ++i) {
    live.push_back(sp_malloc(kSize));
    ASSERT_NE(live.back(), nullptr);
    if (i % 2 == 1) {
      const std::size_t victim = next_random() % live.size();
      sp_free(live[victim]);
      live[victim] = live.back();
      live.pop_back();
    }
  }
  const std::size_t needed = (live.size() + kBlocksPerSlab - 1) / kBlocksPerSlab;
  const sp_class_stats c = class_stats(224);
  EXPECT_LE(c.slabs, needed + 2) << live.size() << " blocks live";
  EXPECT_LE(c.resident, (needed + 2) * 64 * 1024);
  for (void* p : live) sp_free(p);
}

// Blocks another thread frees: taken at once in a class of one slab (memory), in batches of
// 32 KiB in a class of several slabs (a stream of frees from a consumer thread, taken as it
// trickled in, had both threads swap the remote list's cache line every few blocks). Each test
// runs in a thread of its own, so its heap starts with no slab of the class; `frees_elsewhere`
// frees blocks from yet another thread.
void frees_elsewhere(const std::vector<void*>& blocks, std::size_t first, std::size_t count) {
  std::thread([&] {
    for (std::size_t i = first; i < first + count; ++i) sp_free(blocks[i]);
  }).join();
}

// How many of `count` new 64-byte blocks are among blocks[first, first + freed).
std::size_t reused_of(const std::vector<void*>& blocks, std::size_t first, std::size_t freed,
                      std::vector<void*>& fresh, std::size_t count) {
  const std::set<void*> was(blocks.begin() + static_cast<std::ptrdiff_t>(first),
                            blocks.begin() + static_cast<std::ptrdiff_t>(first + freed));
  std::size_t reused = 0;
  for (std::size_t i = 0; i < count; ++i) {
    fresh.push_back(sp_malloc(64));
    reused += was.count(fresh.back());
  }
  return reused;
}

TEST_F(block_reuse, a_class_of_one_slab_takes_blocks_other_threads_freed_at_once) {
  std::thread([] {
    std::vector<void*> blocks(100);  // class 64: one slab, a page and a half carved
    for (void*& p : blocks) p = sp_malloc(64);
    frees_elsewhere(blocks, 0, 50);  // 3.2 KiB: far from a batch
    std::vector<void*> fresh;
    // The 28 blocks the current carve staged go first, then the 50 freed ones.
    EXPECT_EQ(reused_of(blocks, 0, 50, fresh, 78), 50u);
    for (std::size_t i = 50; i < blocks.size(); ++i) sp_free(blocks[i]);
    for (void* p : fresh) sp_free(p);
  }).join();
}

TEST_F(block_reuse, a_busy_class_carves_its_current_slab_until_other_threads_frees_make_a_batch) {
  std::thread([] {
    // Class 64, 1024 blocks to a slab: one full slab and a second one started.
    std::vector<void*> blocks(1100);
    for (void*& p : blocks) p = sp_malloc(64);
    ASSERT_EQ(class_stats(64).block_size, 64u);
    frees_elsewhere(blocks, 0, 200);  // 12.5 KiB of the full slab: not a batch yet
    std::vector<void*> fresh;
    EXPECT_EQ(reused_of(blocks, 0, 200, fresh, 300), 0u) << "the current slab's fresh blocks first";
    frees_elsewhere(blocks, 200, 400);  // 600 blocks, 37.5 KiB: a batch
    // The blocks the last carve staged (a page at most: 64) go first, then the batch.
    EXPECT_GE(reused_of(blocks, 0, 600, fresh, 600 + 64), 600u);
    for (std::size_t i = 600; i < blocks.size(); ++i) sp_free(blocks[i]);
    for (void* p : fresh) sp_free(p);
  }).join();
}

TEST_F(block_reuse, other_threads_frees_too_few_for_a_batch_come_before_a_new_slab) {
  std::thread([] {
    std::vector<void*> blocks(2048);  // class 64: exactly two slabs, every block carved
    for (void*& p : blocks) p = sp_malloc(64);
    std::set<std::uintptr_t> units;
    for (void* p : blocks) units.insert(reinterpret_cast<std::uintptr_t>(p) >> 16);
    ASSERT_EQ(units.size(), 2u) << "1024 blocks of 64 bytes to a 64 KiB slab";
    frees_elsewhere(blocks, 0, 10);
    std::vector<void*> fresh;
    EXPECT_EQ(reused_of(blocks, 0, 10, fresh, 10), 10u) << "no new slab while blocks are free";
    for (std::size_t i = 10; i < blocks.size(); ++i) sp_free(blocks[i]);
    for (void* p : fresh) sp_free(p);
  }).join();
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

// The slabs a new slab takes its memory from, first what the heap holds: a current slab of another
// class that is empty goes back to the pool (a string grown by realloc leaves one in every class
// it passed through, and no trim pass may take a current slab from its owner).
TEST_F(block_reuse, an_empty_current_slab_of_another_class_serves_the_next_new_slab) {
  std::vector<void*> big(2);
  for (void*& p : big) {
    p = sp_malloc(90000);  // class 98304: one slab of four units holds both
    std::memset(p, 1, 90000);
  }
  for (void* p : big) sp_free(p);
  ASSERT_EQ(class_slabs(98304), 1u);
  // Blocks of another class until it takes a new slab.
  const std::size_t slabs_before = class_slabs(1280);
  std::vector<void*> small;
  while (class_slabs(1280) == slabs_before && small.size() < 1000) small.push_back(sp_malloc(1200));
  ASSERT_GT(class_slabs(1280), slabs_before);
  EXPECT_EQ(class_slabs(98304), 0u) << "the empty current slab went back for the new ones";
  for (void* p : small) sp_free(p);
}

// A large block's freed units, still resident, serve new slabs before a new segment is mapped:
// small and multi-unit spans keep to separate segments only while that costs no memory (python3
// grew its slabs into fresh units while 3.4 MiB of its freed large blocks stayed resident).
TEST_F(block_reuse, a_freed_large_block_serves_new_slabs_before_a_new_segment) {
  sp_trim();  // no free unit is resident now
  constexpr std::size_t kBig = 1 << 20;
  void* keeper = sp_malloc(kBig / 4);  // a live block: the big one's segment does not empty
  auto* big = static_cast<char*>(sp_malloc(kBig));
  ASSERT_NE(keeper, nullptr);
  ASSERT_NE(big, nullptr);
  std::memset(big, 1, kBig);
  sp_free(big);
  std::vector<void*> small(16 * 32);  // class 2048: 32 blocks per 64 KiB slab, 16 slabs
  std::size_t inside = 0;
  for (void*& p : small) {
    p = sp_malloc(2000);
    inside += static_cast<char*>(p) >= big && static_cast<char*>(p) < big + kBig;
  }
  EXPECT_GE(inside, small.size() * 3 / 4) << "the new slabs were cut from the freed block";
  for (void* p : small) sp_free(p);
  sp_free(keeper);
}

}  // namespace
