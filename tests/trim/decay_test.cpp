// Decay rules with a fake clock: nothing goes back before the delay, everything idle goes back
// after it, reuse restarts the delay, budgets and the memory limit override it.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

#include "trim_test_util.hpp"

using namespace trim_test;

namespace {

std::vector<void*> allocate(std::size_t size, std::size_t bytes) {
  std::vector<void*> blocks(bytes / size);
  for (void*& p : blocks) {
    p = sp_malloc(size);
    std::memset(p, 0xab, size);
  }
  return blocks;
}

void free_all(std::vector<void*>& blocks) {
  for (void* p : blocks) sp_free(p);
  blocks.clear();
}

class decay : public ::testing::TestWithParam<std::size_t> {
 protected:
  void SetUp() override {
    use_fake_clock(500);
    sp_option_set(SP_OPTION_THREAD_CACHE_BYTES, 1LL << 40);  // only the clock decides here
    sp_option_set(SP_OPTION_CACHE_BYTES, 1LL << 40);
    sp_trim();
  }
};

TEST_P(decay, nothing_returns_before_the_delay_and_all_after_it) {
  auto blocks = allocate(GetParam(), 64 * kMiB);
  free_all(blocks);
  EXPECT_EQ(sp_trim_decay(), 0u) << "a pass right after the free must keep the memory";
  advance_ms(499);
  EXPECT_EQ(sp_trim_decay(), 0u) << "one millisecond before the delay";
  const std::size_t cached_before = stats().cached;
  advance_ms(1);
  const std::size_t returned = sp_trim_decay();
  EXPECT_GE(returned, 60 * kMiB) << "idle memory must go back once the delay has passed";
  EXPECT_LT(stats().cached, cached_before);
  EXPECT_LT(stats().resident, 8 * kMiB);
}

TEST_P(decay, reuse_before_the_delay_keeps_memory) {
  auto blocks = allocate(GetParam(), 32 * kMiB);
  free_all(blocks);
  sp_trim_decay();  // stamps the empty slabs
  advance_ms(400);
  blocks = allocate(GetParam(), 32 * kMiB);  // reused within the delay
  advance_ms(400);
  EXPECT_LT(sp_trim_decay(), 4 * kMiB) << "memory in use again must not be returned";
  free_all(blocks);
  sp_trim_decay();
  advance_ms(500);
  EXPECT_GE(sp_trim_decay(), 28 * kMiB);
}

TEST_P(decay, explicit_trim_returns_everything_at_once) {
  auto blocks = allocate(GetParam(), 64 * kMiB);
  free_all(blocks);
  EXPECT_GE(sp_trim(), 60 * kMiB);
  EXPECT_LT(stats().resident, 8 * kMiB);
  EXPECT_EQ(stats().cached, 0u);
}

INSTANTIATE_TEST_SUITE_P(sizes, decay, ::testing::Values(64, 100 * 1024, 4 * kMiB));

TEST(decay_limits, thread_cache_budget_releases_the_surplus_at_once) {
  use_fake_clock(3600 * 1000);
  sp_option_set(SP_OPTION_CACHE_BYTES, 0);
  sp_option_set(SP_OPTION_THREAD_CACHE_BYTES, 1 * kMiB);
  auto blocks = allocate(64, 64 * kMiB);
  free_all(blocks);
  // The delay is an hour, but the heap may keep only 1 MiB of empty slabs.
  EXPECT_GE(sp_trim_decay(), 60 * kMiB);
}

TEST(decay_limits, process_cache_budget_bounds_free_resident_memory) {
  use_fake_clock(3600 * 1000);
  sp_option_set(SP_OPTION_THREAD_CACHE_BYTES, 0);
  sp_option_set(SP_OPTION_CACHE_BYTES, 16 * kMiB);
  auto blocks = allocate(100 * 1024, 128 * kMiB);
  free_all(blocks);
  sp_trim_decay();
  EXPECT_LE(stats().cached, 16 * kMiB) << "cached free memory above SLABPOOL_CACHE goes back";
}

TEST(decay_limits, memory_limit_makes_trimming_ignore_the_delay) {
  use_fake_clock(3600 * 1000);
  sp_option_set(SP_OPTION_THREAD_CACHE_BYTES, 1LL << 40);
  sp_option_set(SP_OPTION_CACHE_BYTES, 1LL << 40);
  auto keep = allocate(4096, 48 * kMiB);  // live memory keeps resident above the limit
  auto blocks = allocate(4096, 64 * kMiB);
  free_all(blocks);
  EXPECT_EQ(sp_trim_decay(), 0u) << "no limit: the hour-long delay holds";
  sp_option_set(SP_OPTION_MEMORY_LIMIT, 32 * kMiB);
  EXPECT_GE(sp_trim_decay(), 60 * kMiB);
  free_all(keep);
}

TEST(decay_limits, memory_of_exited_threads_is_trimmed_too) {
  use_fake_clock(500);
  std::vector<void*> blocks;
  std::thread([&] { blocks = allocate(64, 32 * kMiB); }).join();
  free_all(blocks);  // remote frees into slabs whose owner has exited
  sp_trim_decay();   // sees them empty: the delay counts from here
  EXPECT_EQ(stats().abandoned_slabs, 0u);
  advance_ms(1000);
  sp_trim_decay();
  EXPECT_EQ(stats().abandoned_slabs, 0u);
  EXPECT_LT(stats().resident, 8 * kMiB);
}

}  // namespace
