// Thread exit: destructors that run after slabpool's (pthread keys, in every round glibc gives
// them) may allocate and free; no heap is left behind and nothing leaks.
#include <gtest/gtest.h>
#include <pthread.h>
#include <slabpool/slabpool.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "common/sanitized.hpp"
#include "common/watchdog.hpp"

namespace {

const sp_test::watchdog g_watchdog(300, "thread_exit_test");

pthread_key_t g_key;
std::atomic<long> g_rounds{0};
std::atomic<void*> g_kept[512];
std::atomic<int> g_kept_count{0};

// Allocates and frees in every destructor round, and re-arms itself so glibc runs every round
// it has (PTHREAD_DESTRUCTOR_ITERATIONS); keeps one block per thread for the test to check.
void allocating_destructor(void* value) {
  g_rounds.fetch_add(1, std::memory_order_relaxed);
  void* blocks[64];
  for (void*& b : blocks) {
    b = sp_malloc(700);
    std::memset(b, 0x5a, 700);
  }
  for (void* b : blocks) sp_free(b);
  if (value == reinterpret_cast<void*>(1)) {
    auto* kept = static_cast<char*>(sp_malloc(100));
    std::memset(kept, 0x7b, 100);
    const int i = g_kept_count.fetch_add(1);
    if (i < 512) g_kept[i] = kept;
  }
  pthread_setspecific(g_key, reinterpret_cast<void*>(2));
}

TEST(thread_exit, destructors_allocating_in_every_round_leave_no_heap_behind) {
  // TSan's runtime finishes its own view of a thread in an early destructor round and crashes in
  // instrumented code that runs in a later one (its SEGV is in __tsan::TraceSwitchPart, before
  // any slabpool code runs).
  if (sp_build::kThreadSanitizer) GTEST_SKIP() << "TSan cannot run code in late key destructors";
  // slabpool's own key first (made with the first heap), ours after it: in every round glibc
  // runs slabpool's destructor before ours, so ours allocates after the heap was handed over.
  sp_free(sp_malloc(1));
  ASSERT_EQ(pthread_key_create(&g_key, allocating_destructor), 0);
  for (int t = 0; t < 100; ++t) {
    std::thread([] {
      // The thread's own work, so its heap holds slabs of several classes.
      std::vector<void*> blocks;
      for (int i = 0; i < 2000; ++i)
        blocks.push_back(sp_malloc(static_cast<std::size_t>(16 + i % 900)));
      for (void* b : blocks) sp_free(b);
      pthread_setspecific(g_key, reinterpret_cast<void*>(1));
    }).join();
  }
  EXPECT_GE(g_rounds.load(), 100 * 2) << "destructors ran in several rounds";
  // The blocks allocated during exit are intact and can be freed by anyone.
  ASSERT_EQ(g_kept_count.load(), 100);
  for (int i = 0; i < 100; ++i) {
    auto* kept = static_cast<unsigned char*>(g_kept[i].load());
    for (int j = 0; j < 100; ++j) ASSERT_EQ(kept[j], 0x7b);
    sp_free(kept);
  }
  sp_trim();
  sp_stats st;
  sp_stats_get(&st);
  EXPECT_EQ(st.threads, 1u) << "one heap per thread alive (this one), none for exited threads";
  // Checked mode's quarantine keeps up to 16 MiB of freed blocks on purpose: the bound on what
  // stays behind applies to release mode (the heap count holds in both).
  if (sp_option_get(SP_OPTION_CHECKED) == 0) {
    EXPECT_LT(st.active, std::size_t{1} << 20) << "every block was freed: the slabs go back";
  }
  pthread_key_delete(g_key);
}

}  // namespace
