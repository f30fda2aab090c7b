// sp_on_trim: callbacks run after every pass, can be removed, and the table is bounded.
#include <gtest/gtest.h>

#include <cerrno>
#include <vector>

#include "trim_test_util.hpp"

using namespace trim_test;

namespace {

void count_call(void* context) {
  ++*static_cast<int*>(context);
}

// Allocating inside the callback must work: no allocator lock is held while callbacks run.
void allocate_in_callback(void* context) {
  void* p = sp_malloc(200);
  *static_cast<bool*>(context) = p != nullptr;
  sp_free(p);
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
