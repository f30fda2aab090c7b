// With the default options (background trimmer on, real clock), an idle pool empties by itself:
// the background trimmer's passes age it, and the pool's trim hook reports the victim generation
// it still holds so those passes go on until it is empty (tests/trim/trim_hook_test.cpp checks
// that a holding callback keeps the trimmer running).
#include <gtest/gtest.h>
#include <slabpool/pool.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace {

TEST(background_epochs, an_idle_pool_empties_without_being_asked) {
  slabpool::object_pool<std::string> pool([] { return std::string(100, 'x'); });
  {
    std::vector<decltype(pool.get())> held;
    for (int i = 0; i < 32; ++i) held.push_back(pool.get());
  }  // all 32 back in this thread's cache
  ASSERT_EQ(pool.stats().cached, 32u);
  // Arm the slow-path clock and start the trimmer: slow paths more than one interval apart.
  std::vector<void*> churn;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 20000; ++i) churn.push_back(sp_malloc(64));
    for (void* p : churn) sp_free(p);
    churn.clear();
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  const auto start = std::chrono::steady_clock::now();
  while (pool.stats().cached != 0 &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(pool.stats().cached, 0u) << "the idle pool kept its objects";
  EXPECT_EQ(pool.stats().trimmed, 32u);
}

}  // namespace
