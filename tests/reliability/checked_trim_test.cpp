// Checked mode with the background trimmer off: the slow paths run trim passes themselves, so a
// large free can start a pass whose callbacks free memory again (documented as allowed) or age
// object pools. Nothing may hang: no pass runs under the quarantine lock.
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>
#include <slabpool/pool.hpp>

#include <atomic>
#include <chrono>
#include <vector>

#include "common/watchdog.hpp"

namespace {

const sp_test::watchdog g_watchdog(300, "checked_trim_test");
const int g_checked_on = sp_option_set(SP_OPTION_CHECKED, 1);
const int g_trimmer_off = sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
// Slow paths check the (real) clock and run a pass every interval: the shortest one.
const int g_interval = sp_option_set(SP_OPTION_TRIM_INTERVAL_MS, 10);
constexpr int kMaxRounds = 1000;  // far more than the few hundred milliseconds needed

// Frees 64 large blocks about a millisecond apart, with no allocation in between, so the slow-path
// clock checks that come due (every 10 ms) are the frees': each runs a pass from inside a large
// free, where checked mode used to hold its quarantine lock.
void free_large_blocks_slowly() {
  void* blocks[64];
  for (void*& p : blocks) p = sp_malloc(300000);
  for (void* p : blocks) {
    sp_free(p);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
    while (std::chrono::steady_clock::now() < until) {
    }
  }
}

std::atomic<long> g_callback_frees{0};
int allocates_and_frees(void*) {
  for (std::size_t size : {24, 5000, 300000}) sp_free(sp_malloc(size));
  g_callback_frees.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

TEST(checked_trim, large_frees_run_passes_whose_callbacks_free) {
  ASSERT_EQ(g_checked_on, 0);
  ASSERT_EQ(g_trimmer_off, 0);
  ASSERT_EQ(g_interval, 0);
  ASSERT_EQ(sp_on_trim(allocates_and_frees, nullptr), 0);
  for (int i = 0; i < kMaxRounds && g_callback_frees.load() < 5; ++i) free_large_blocks_slowly();
  EXPECT_GE(g_callback_frees.load(), 5) << "passes ran from the large frees' slow paths";
  ASSERT_EQ(sp_on_trim_remove(allocates_and_frees, nullptr), 0);
}

struct widget {
  char bytes[40];
};

TEST(checked_trim, large_frees_with_an_object_pool_alive) {
  slabpool::object_pool<widget> pool({}, {}, {.per_thread = 300});
  {
    std::vector<slabpool::object_pool<widget>::handle> held;
    for (int k = 0; k < 100; ++k) held.push_back(pool.get());
  }  // 100 objects cached: the second epoch destroys them (frees, from inside the pass)
  for (int i = 0; i < kMaxRounds && pool.stats().epochs < 5; ++i) free_large_blocks_slowly();
  EXPECT_GE(pool.stats().epochs, 5u) << "passes from the large frees' slow paths aged the pool";
  EXPECT_EQ(pool.stats().trimmed, 100u);
}

// A double free of a large block is still caught (the block is claimed under the quarantine
// lock before it is freed outside it).
TEST(checked_trim_death, double_free_of_a_large_block_is_reported) {
  EXPECT_DEATH(
      {
        void* p = sp_malloc(300000);
        sp_free(p);
        sp_free(p);
      },
      "double free");
}

}  // namespace
