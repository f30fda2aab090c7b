// The lock hierarchy (slabpool/detail/locks.hpp): ranks are tracked per thread, a lock taken out
// of order is reported (checked mode here; every debug build too), fork participants run in rank
// order, and a trim pass started while the thread holds a lock runs no callback.
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>
#include <sys/wait.h>
#include <unistd.h>
#include <slabpool/detail/locks.hpp>
#include <slabpool/pool.hpp>
#include <slabpool/resource_pool.hpp>

#include <mutex>
#include <string>

#include "common/sanitized.hpp"

namespace {

using slabpool::detail::fork_participant;
using slabpool::detail::held_lock_ranks;
using slabpool::detail::lock_rank;
using slabpool::detail::ranked;

const int g_checked_on = sp_option_set(SP_OPTION_CHECKED, 1);

constexpr std::uint32_t bit(lock_rank r) {
  return std::uint32_t{1} << static_cast<unsigned>(r);
}

TEST(lock_order, held_ranks_are_tracked) {
  ASSERT_EQ(g_checked_on, 0);
  sp_free(sp_malloc(1));  // checked mode latched
  ranked<std::mutex> low(lock_rank::pool_registry), high(lock_rank::segment_pool);
  EXPECT_EQ(held_lock_ranks(), 0u);
  {
    std::lock_guard a(low);
    EXPECT_EQ(held_lock_ranks(), bit(lock_rank::pool_registry));
    std::lock_guard b(high);
    EXPECT_EQ(held_lock_ranks(), bit(lock_rank::pool_registry) | bit(lock_rank::segment_pool));
  }
  EXPECT_EQ(held_lock_ranks(), 0u);
  ASSERT_TRUE(high.try_lock());
  EXPECT_EQ(held_lock_ranks(), bit(lock_rank::segment_pool));
  high.unlock();
  EXPECT_EQ(held_lock_ranks(), 0u);
}

TEST(lock_order_death, a_lower_rank_under_a_higher_one_is_reported) {
  sp_free(sp_malloc(1));
  ranked<std::mutex> heap_like(lock_rank::heap), pool_like(lock_rank::pool_victim);
  EXPECT_DEATH(
      {
        std::lock_guard a(heap_like);
        std::lock_guard b(pool_like);
      },
      "lock order violated: taking 'pool_victim' while holding 'heap'");
}

TEST(lock_order_death, the_same_rank_twice_is_reported) {
  sp_free(sp_malloc(1));
  ranked<std::mutex> one(lock_rank::pool_victim), two(lock_rank::pool_victim);
  EXPECT_DEATH(
      {
        std::lock_guard a(one);
        std::lock_guard b(two);
      },
      "lock order violated");
}

int g_callback_calls = 0;
int count_calls(void*) {
  ++g_callback_calls;
  return 0;
}

TEST(lock_order, a_pass_under_a_held_lock_runs_no_callback) {
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  ASSERT_EQ(sp_on_trim(count_calls, nullptr), 0);
  ranked<std::mutex> pool_like(lock_rank::pool_registry);
  {
    std::lock_guard hold(pool_like);
    EXPECT_EQ(sp_trim(), 0u);
    EXPECT_EQ(g_callback_calls, 0) << "a callback may need the lock this thread holds";
  }
  sp_trim();
  EXPECT_EQ(g_callback_calls, 1);
  ASSERT_EQ(sp_on_trim_remove(count_calls, nullptr), 0);
}

std::string g_order;
void note(void* context) {
  g_order += static_cast<const char*>(context);
}

TEST(lock_order, fork_participants_run_in_rank_order) {
  if (sp_build::kThreadSanitizer) GTEST_SKIP() << "no fork under TSan";
  // Registered out of order; prepare must see them by rank, parent and child in reverse.
  fork_participant c{lock_rank::segment_pool, note, note, note, const_cast<char*>("c")};
  fork_participant a{lock_rank::pool_registry, note, note, note, const_cast<char*>("a")};
  fork_participant b{lock_rank::heap, note, note, note, const_cast<char*>("b")};
  fork_participant a2{lock_rank::pool_registry, note, note, note, const_cast<char*>("A")};
  slabpool::detail::fork_participant_add(&c);
  slabpool::detail::fork_participant_add(&a);
  slabpool::detail::fork_participant_add(&b);
  slabpool::detail::fork_participant_add(&a2);
  g_order.clear();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(g_order == "aAbccbAa" ? 0 : 1);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_EQ(g_order, "aAbccbAa");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child saw the same order";
  slabpool::detail::fork_participant_remove(&a);
  slabpool::detail::fork_participant_remove(&c);
  slabpool::detail::fork_participant_remove(&b);
  slabpool::detail::fork_participant_remove(&a2);
  g_order.clear();
  const pid_t again = fork();
  if (again == 0) _exit(0);
  waitpid(again, &status, 0);
  EXPECT_EQ(g_order, "") << "removed participants no longer run";
}

}  // namespace

namespace {

// A new rank without a fork participant fails here: once the core, an object pool and a
// resource pool are in use, every rank of the list is taken around fork.
TEST(lock_order, every_rank_has_a_fork_participant) {
  sp_free(sp_malloc(1));
  sp_free(sp_malloc(std::size_t{1} << 20));
  slabpool::object_pool<int> pool;
  pool.get();
  slabpool::resource_pool<int> connections([] { return 7; });
  connections.acquire();
  const std::uint32_t covered = slabpool::detail::fork_covered_ranks();
  for (unsigned r = 1; r < static_cast<unsigned>(lock_rank::count_); ++r) {
    EXPECT_TRUE(covered & (std::uint32_t{1} << r))
        << "no fork participant takes '"
        << slabpool::detail::lock_rank_name(static_cast<lock_rank>(r)) << "'";
  }
}

}  // namespace
