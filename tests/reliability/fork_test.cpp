// fork() while other threads are inside slabpool's and the pools' slow paths: every lock they
// may hold is a fork participant, so the child never inherits one held by a thread that does not
// exist there. Each child allocates, frees and uses the pool once and exits; a child that hangs
// is killed after its stacks are printed, and the test fails.
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>
#include <sys/wait.h>
#include <unistd.h>
#include <slabpool/pool.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "common/sanitized.hpp"
#include "common/watchdog.hpp"

namespace {

const sp_test::watchdog g_watchdog(600, "fork_test");

// The checked variant of this binary turns checked mode on before the first allocation: its
// quarantine lock is then taken by every free.
#ifdef SP_FORK_TEST_CHECKED
const int g_checked_on = sp_option_set(SP_OPTION_CHECKED, 1);
#endif

struct widget {
  char bytes[64];
};
using pool_type = slabpool::object_pool<widget>;

// Forks `children` times while `busy` runs on two other threads; every child must exit 0.
// Children use slabpool only, never the system allocator, which need not be fork-safe (ASan's is
// not: a child forked while another thread allocates may hang inside it).
template <class Child>
void fork_while_busy(int children, void (*busy)(std::atomic<bool>&, pool_type&), Child child) {
  if (sp_build::kThreadSanitizer) GTEST_SKIP() << "TSan does not support fork from threads";
  pool_type pool({}, {}, {.per_thread = 4});
  std::atomic<bool> stop{false};
  std::thread a([&] { busy(stop, pool); });
  std::thread b([&] { busy(stop, pool); });
  int hung = 0, failed = 0;
  for (int i = 0; i < children; ++i) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      sp_test::die_with_parent();
      child(pool);
      _exit(0);
    }
    int status = 0;
    if (!sp_test::wait_child(pid, 60, &status, "forked while other threads were busy")) {
      ++hung;
      break;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  stop = true;
  a.join();
  b.join();
  EXPECT_EQ(hung, 0) << "a child hung (stacks above)";
  EXPECT_EQ(failed, 0);
}

// Small, large and huge blocks allocated here and freed on the other thread (remote frees, the
// quarantine in checked mode, the segment pool), plus trims.
void allocate_and_free(std::atomic<bool>& stop, pool_type&) {
  std::vector<void*> blocks;
  for (unsigned i = 0; !stop.load(std::memory_order_relaxed); ++i) {
    const std::size_t size = i % 97 == 0 ? 300000 : i % 1013 == 0 ? (5u << 20) : 16 + i % 2000;
    blocks.push_back(sp_malloc(size));
    if (blocks.size() > 64) {
      for (void* p : blocks) sp_free(p);
      blocks.clear();
    }
    if (i % 4096 == 0) sp_trim_decay();
  }
  for (void* p : blocks) sp_free(p);
}

TEST(fork, child_allocates_and_frees_while_threads_free_in_the_parent) {
  fork_while_busy(200, allocate_and_free, [](pool_type&) {
    for (std::size_t size : {std::size_t{16}, std::size_t{64}, std::size_t{1000},
                             std::size_t{300000}, std::size_t{5} << 20}) {
      void* p = sp_malloc(size);
      if (p == nullptr) _exit(2);
      sp_free(p);
    }
    sp_trim();
  });
}

// Gets beyond the thread cache (4) steal from other threads and take from the victim generation
// under its lock; epochs refill the victim generation.
void churn_pool(std::atomic<bool>& stop, pool_type& pool) {
  std::vector<pool_type::handle> held;
  for (unsigned i = 0; !stop.load(std::memory_order_relaxed); ++i) {
    for (int k = 0; k < 32; ++k) held.push_back(pool.get());
    held.clear();
    if (i % 3 == 0) pool.advance_epoch();
    if (i % 7 == 0) slabpool::pool_epoch();
  }
}

TEST(fork, child_uses_a_pool_while_threads_steal_from_its_victim_generation) {
  fork_while_busy(200, churn_pool, [](pool_type& pool) {
    {
      pool_type::handle held[32];  // not a vector: see fork_while_busy
      for (auto& h : held) h = pool.get();
    }
    pool.advance_epoch();
    slabpool::pool_epoch();
  });
}

int noop_callback(void*) {
  return 0;
}
int g_contexts[2];

// sp_on_trim's registration lock is held for a moment by every register and remove.
void register_and_remove(std::atomic<bool>& stop, pool_type&) {
  int* context = &g_contexts[0];
  while (!stop.load(std::memory_order_relaxed)) {
    if (sp_on_trim(noop_callback, context) == 0) sp_on_trim_remove(noop_callback, context);
    context = context == &g_contexts[0] ? &g_contexts[1] : &g_contexts[0];
  }
}

TEST(fork, child_registers_trim_callbacks_while_threads_register_theirs) {
  fork_while_busy(200, register_and_remove, [](pool_type&) {
    int mine = 0;
    if (sp_on_trim(noop_callback, &mine) != 0) _exit(2);
    sp_trim();
    if (sp_on_trim_remove(noop_callback, &mine) != 0) _exit(3);
  });
}

}  // namespace
