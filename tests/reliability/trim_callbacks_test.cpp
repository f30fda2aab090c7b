// sp_on_trim callbacks: each registration's function always gets its own context, a removed
// callback is no longer running when sp_on_trim_remove returns, and a pass never nests inside
// another on one thread.
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/watchdog.hpp"

namespace {

const sp_test::watchdog g_watchdog(300, "trim_callbacks_test");

struct tagged {
  int tag;
};
std::atomic<long> g_calls{0};
std::atomic<long> g_mismatches{0};

int expects_one(void* context) {
  g_calls.fetch_add(1, std::memory_order_relaxed);
  if (static_cast<tagged*>(context)->tag != 1) g_mismatches.fetch_add(1, std::memory_order_relaxed);
  return 0;
}
int expects_two(void* context) {
  g_calls.fetch_add(1, std::memory_order_relaxed);
  if (static_cast<tagged*>(context)->tag != 2) g_mismatches.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

// Two threads run passes back to back while a third registers and removes two callbacks in the
// same slots over and over: a pass that loaded one registration's function and the next one's
// context would call expects_one with tag 2.
TEST(trim_callbacks, each_function_is_called_with_its_own_context) {
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  tagged one{1}, two{2};
  std::atomic<bool> stop{false};
  auto passes = [&] {
    while (!stop.load(std::memory_order_relaxed)) sp_trim_decay();
  };
  std::thread a(passes), b(passes);
  for (int i = 0; i < 400000; ++i) {
    ASSERT_EQ(sp_on_trim(expects_one, &one), 0);
    ASSERT_EQ(sp_on_trim_remove(expects_one, &one), 0);
    ASSERT_EQ(sp_on_trim(expects_two, &two), 0);  // reuses the slot just freed
    ASSERT_EQ(sp_on_trim_remove(expects_two, &two), 0);
  }
  stop = true;
  a.join();
  b.join();
  EXPECT_GT(g_calls.load(), 0);
  EXPECT_EQ(g_mismatches.load(), 0) << "of " << g_calls.load() << " calls";
}

std::atomic<bool> g_inside{false};
std::atomic<bool> g_entered{false};
int slow_callback(void*) {
  g_inside = true;
  g_entered = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  g_inside = false;
  return 0;
}

// After remove returns the caller may free the context: no pass may still be inside.
TEST(trim_callbacks, remove_waits_for_a_running_call) {
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  ASSERT_EQ(sp_on_trim(slow_callback, nullptr), 0);
  std::thread pass([] { sp_trim_decay(); });
  while (!g_entered) std::this_thread::yield();
  ASSERT_EQ(sp_on_trim_remove(slow_callback, nullptr), 0);
  EXPECT_FALSE(g_inside.load()) << "sp_on_trim_remove returned while the callback ran";
  pass.join();
}

std::atomic<int> g_depth{0};
std::atomic<int> g_max_depth{0};
std::atomic<long> g_nested_returned{-1};
int trims_from_inside(void*) {
  const int depth = ++g_depth;
  if (depth > g_max_depth) g_max_depth = depth;
  if (depth < 50) {
    // A pass started inside a callback (directly, or by an allocation's slow path) is skipped.
    g_nested_returned = static_cast<long>(sp_trim());
    for (int i = 0; i < 1000; ++i) sp_free(sp_malloc(static_cast<std::size_t>(16 + i * 48)));
  }
  --g_depth;
  return 0;
}

TEST(trim_callbacks, a_pass_never_nests_inside_a_callback) {
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  ASSERT_EQ(sp_on_trim(trims_from_inside, nullptr), 0);
  sp_trim();
  EXPECT_EQ(g_max_depth.load(), 1);
  EXPECT_EQ(g_nested_returned.load(), 0);
  ASSERT_EQ(sp_on_trim_remove(trims_from_inside, nullptr), 0);
}

int removes_itself(void* context) {
  *static_cast<int*>(context) += 1;
  // From inside a callback: no waiting (it would wait for itself).
  EXPECT_EQ(sp_on_trim_remove(removes_itself, context), 0);
  return 0;
}

TEST(trim_callbacks, a_callback_may_remove_itself) {
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  int calls = 0;
  ASSERT_EQ(sp_on_trim(removes_itself, &calls), 0);
  sp_trim();
  sp_trim();
  EXPECT_EQ(calls, 1);
}

TEST(trim_callbacks, a_null_function_is_refused) {
  EXPECT_EQ(sp_on_trim(nullptr, nullptr), EINVAL);
}

}  // namespace
