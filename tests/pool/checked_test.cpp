// Checked mode (SLABPOOL_POOL_CHECKS=1, forced for this file in CMake): a handle that outlives its
// pool is reported and the process aborts, instead of writing into freed memory.
#include <gtest/gtest.h>
#include <slabpool/buffer_pool.hpp>
#include <slabpool/pool.hpp>

#include <memory>
#include <string>

static_assert(SLABPOOL_POOL_CHECKS == 1, "this test needs checked mode");

namespace {

// The pools below are deleted through a pointer the compiler cannot follow: the handle's use of
// its deleted pool is the point of these tests, and g++'s -Wuse-after-free rejects it otherwise.
template <class T>
T* opaque(T* p) {
  T* volatile hidden = p;
  return hidden;
}

TEST(pool_checked_death, object_handle_destroyed_after_its_pool) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto* pool = new slabpool::object_pool<std::string>();
        auto h = pool->get();
        delete opaque(pool);
      },
      "handle used or destroyed after its pool");
}

TEST(pool_checked_death, buffer_handle_destroyed_after_its_pool) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto* pool = new slabpool::buffer_pool();
        auto b = pool->get(100);
        delete opaque(pool);
      },
      "buffer_pool handle used or destroyed after its pool");
}

TEST(pool_checked, handles_within_the_pool_lifetime_pass_the_check) {
  slabpool::object_pool<std::string> pool;
  for (int i = 0; i < 100; ++i) {
    auto h = pool.get();
    h->assign(40, 'z');
  }
  // A new pool may reuse the dead pool's index; its ticket still differs.
  auto old = std::make_unique<slabpool::object_pool<std::string>>();
  old.reset();
  slabpool::object_pool<std::string> reused;
  { auto h = reused.get(); }
  EXPECT_EQ(reused.stats().cached, 1u);
}

}  // namespace
