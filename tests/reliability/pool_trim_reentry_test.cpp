// Pools and trim passes: an allocation a pool makes may run a trim pass on the same thread, and
// the pass runs the pools' hook. Nothing may hang: pools allocate outside their locks, and a pass
// started under a lock skips itself.
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>
#include <slabpool/testing.h>
#include <slabpool/pool.hpp>

#include <atomic>
#include <vector>

#include "common/watchdog.hpp"

namespace {

const sp_test::watchdog g_watchdog(300, "pool_trim_reentry_test");

constexpr long kMaxRounds = 1'000'000;  // far more than the few hundred milliseconds needed

std::size_t passes_run() {
  sp_stats st;
  sp_stats_get(&st);
  return st.trims;
}

struct widget {
  char bytes[48];
};

// Fills the pool's thread cache, so an epoch has objects to move and a batch to allocate.
void use(slabpool::object_pool<widget>& pool, int n) {
  std::vector<slabpool::object_pool<widget>::handle> held;
  for (int i = 0; i < n; ++i) held.push_back(pool.get());
}

// With the background trimmer off, slow paths run the passes themselves, once per interval (real
// clock). An epoch's batch here is a large block (20000 pointers), so every epoch allocates on a
// slow path; when that path's clock check comes due it runs a pass whose hook is pool_epoch,
// called from pool_epoch itself or from sp_trim's own pass.
TEST(pool_trim_reentry, epochs_and_trims_with_background_trim_off) {
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  sp_option_set(SP_OPTION_TRIM_INTERVAL_MS, 10);
  slabpool::object_pool<widget> pool({}, {}, {.per_thread = 20000});
  std::size_t explicit_passes = 0;
  const std::size_t start = passes_run();
  for (long i = 0; i < kMaxRounds && passes_run() - start < explicit_passes + 5; ++i) {
    use(pool, 64);
    slabpool::pool_epoch();
    if (i % 2 == 0) {
      sp_trim();
      ++explicit_passes;
    }
  }
  EXPECT_GE(passes_run() - start, explicit_passes + 5) << "slow paths ran passes of their own";
  EXPECT_GE(pool.stats().epochs, 5u);
}

// Default options, mappings failing: the batch of an epoch is a huge block, its mapping fails and
// the out-of-memory retry runs a forced pass on this thread, whose hook is pool_epoch again.
TEST(pool_trim_reentry, epochs_while_mappings_fail) {
  constexpr std::uint32_t kPerThread = 1u << 20;  // an 8 MiB batch: a mapping of its own
  slabpool::object_pool<widget> pool({}, {}, {.per_thread = kPerThread});
  use(pool, 64);
  sp_testing_fail_maps(1L << 30);
  slabpool::pool_epoch();  // the batch cannot be had: the caches stay, nothing hangs
  sp_trim();
  use(pool, 64);
  sp_testing_fail_maps(0);
  slabpool::pool_epoch();
  slabpool::pool_epoch();
  EXPECT_EQ(pool.stats().cached, 0u) << "two epochs with memory empty an idle pool";
}

// Pools made and destroyed while passes run on other threads: registration allocates outside the
// registry lock too.
TEST(pool_trim_reentry, pools_come_and_go_while_passes_run) {
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  sp_option_set(SP_OPTION_TRIM_INTERVAL_MS, 10);
  std::atomic<bool> stop{false};
  std::thread trimmer([&] {
    while (!stop) sp_trim_decay();
  });
  for (int round = 0; round < 2000; ++round) {
    slabpool::object_pool<widget> pool({}, {},
                                       {.per_thread = 8 + static_cast<std::uint32_t>(round % 300)});
    use(pool, round % 50);
    if (round % 7 == 0) slabpool::pool_epoch();
  }
  stop = true;
  trimmer.join();
}

}  // namespace
