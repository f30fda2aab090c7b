// sp_on_trim: callbacks run after every pass, can be removed, and the table is bounded.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>
#include <vector>

#include "trim_test_util.hpp"

using namespace trim_test;

namespace {

int count_call(void* context) {
  ++*static_cast<int*>(context);
  return 0;
}

// Allocating inside the callback must work: no allocator lock is held while callbacks run.
int allocate_in_callback(void* context) {
  void* p = sp_malloc(200);
  *static_cast<bool*>(context) = p != nullptr;
  sp_free(p);
  return 0;
}

TEST(trim_hook, runs_after_every_pass_until_removed) {
  use_fake_clock(500);
  int calls = 0;
  ASSERT_EQ(sp_on_trim(count_call, &calls), 0);
  sp_trim();
  sp_trim_decay();
  EXPECT_EQ(calls, 2);
  ASSERT_EQ(sp_on_trim_remove(count_call, &calls), 0);
  sp_trim();
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(sp_on_trim_remove(count_call, &calls), ENOENT);
}

TEST(trim_hook, callbacks_may_allocate) {
  use_fake_clock(500);
  bool allocated = false;
  ASSERT_EQ(sp_on_trim(allocate_in_callback, &allocated), 0);
  sp_trim();
  EXPECT_TRUE(allocated);
  sp_on_trim_remove(allocate_in_callback, &allocated);
}

// A callback that still holds something keeps the background trimmer running passes.
// Runs on the trimmer thread and on sp_trim's caller, possibly at once: the count is atomic.
int holding_call(void* context) {
  static_cast<std::atomic<int>*>(context)->fetch_add(1);
  return 1;
}

TEST(trim_hook, a_holding_callback_keeps_the_trimmer_running) {
  std::atomic<int> calls = 0;
  ASSERT_EQ(sp_on_trim(holding_call, &calls), 0);
  // Arm the slow-path clock and start the trimmer (slow paths more than an interval apart).
  for (int round = 0; round < 2; ++round) {
    std::vector<void*> blocks(20000);
    for (void*& p : blocks) p = sp_malloc(64);
    for (void* p : blocks) sp_free(p);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  sp_trim();  // returns everything: nothing else is pending or held
  const int before = calls.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  // Every 100 ms, backing off to at most one pass a second: at least two in 1.5 s.
  EXPECT_GE(calls - before, 2) << "the trimmer went to sleep although the callback holds work";
  sp_on_trim_remove(holding_call, &calls);
}

TEST(trim_hook, the_table_is_bounded) {
  use_fake_clock(500);
  std::vector<int> counters(17);
  for (int i = 0; i < 16; ++i) ASSERT_EQ(sp_on_trim(count_call, &counters[i]), 0) << i;
  EXPECT_EQ(sp_on_trim(count_call, &counters[16]), ENOMEM);
  sp_trim();
  for (int i = 0; i < 16; ++i) EXPECT_EQ(counters[i], 1) << i;
  EXPECT_EQ(counters[16], 0);
  ASSERT_EQ(sp_on_trim_remove(count_call, &counters[3]), 0);
  EXPECT_EQ(sp_on_trim(count_call, &counters[16]), 0) << "a removed slot is reused";
}

}  // namespace
