// Real resident memory (/proc/self/statm) with the real clock and the background trimmer: after a
// 1 GiB burst is freed, an idle process gives the memory back without being asked.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "trim_test_util.hpp"

using namespace trim_test;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

constexpr std::size_t kBurstBytes = std::size_t{1} << 30;
constexpr std::size_t kSlack = 16 * kMiB;
// How long a test waits for resident memory to fall. The default delay plus one interval is
// 600 ms; the bound is generous because CI machines are shared, and the time actually taken is
// printed for the report.
constexpr milliseconds kPatience{10000};

void burst(std::size_t size, std::size_t bytes) {
  std::vector<void*> blocks(bytes / size);
  for (void*& p : blocks) {
    p = sp_malloc(size);
    ASSERT_NE(p, nullptr);
    std::memset(p, 0x5a, size);
  }
  for (void* p : blocks) sp_free(p);
}

// Waits until resident memory is within kSlack of `baseline`; returns the time it took, or -1.
long long wait_for_resident_below(std::size_t baseline) {
  const auto start = steady_clock::now();
  while (steady_clock::now() - start < kPatience) {
    if (resident_bytes() <= baseline + kSlack) {
      return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start).count();
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  return -1;
}

class idle_process : public ::testing::TestWithParam<std::size_t> {};

TEST_P(idle_process, returns_a_freed_gigabyte_without_being_asked) {
  const std::size_t baseline = resident_bytes();
  burst(GetParam(), kBurstBytes);
  const long long took = wait_for_resident_below(baseline);
  std::printf("[ rss ] %zu-byte objects: resident back within 16 MiB after %lld ms\n", GetParam(),
              took);
  EXPECT_GE(took, 0) << "resident " << resident_bytes() / kMiB << " MiB, baseline "
                     << baseline / kMiB << " MiB";
}

TEST_P(idle_process, a_blocked_thread_does_not_pin_what_it_freed) {
  const std::size_t baseline = resident_bytes();
  std::mutex m;
  std::condition_variable cv;
  bool burst_done = false, release = false;
  std::thread worker([&] {
    burst(GetParam(), kBurstBytes);
    std::unique_lock lock(m);
    burst_done = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });  // blocked: runs no allocator code from here on
  });
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return burst_done; });
  }
  const long long took = wait_for_resident_below(baseline);
  {
    std::lock_guard lock(m);
    release = true;
  }
  cv.notify_all();
  worker.join();
  std::printf("[ rss ] %zu-byte objects, blocked thread: back after %lld ms\n", GetParam(), took);
  EXPECT_GE(took, 0);
}

TEST_P(idle_process, explicit_trim_returns_it_at_once) {
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  sp_option_set(SP_OPTION_TRIM_DELAY_MS, 3600 * 1000);
  const std::size_t baseline = resident_bytes();
  burst(GetParam(), kBurstBytes);
  sp_trim();
  EXPECT_LE(resident_bytes(), baseline + kSlack);
}

TEST_P(idle_process, repeated_bursts_do_not_grow_beyond_one) {
  constexpr std::size_t kBytes = 64 * kMiB;
  burst(GetParam(), kBytes);
  const std::size_t after_one = resident_bytes();
  for (int i = 0; i < 50; ++i) burst(GetParam(), kBytes);
  EXPECT_LE(resident_bytes(), after_one + kSlack);
}

INSTANTIATE_TEST_SUITE_P(sizes, idle_process, ::testing::Values(64, 100 * 1024, 4 * kMiB));

TEST(background_trimmer, sleeps_once_nothing_is_left_to_return) {
  const std::size_t baseline = resident_bytes();
  burst(64, 256 * kMiB);
  ASSERT_GE(wait_for_resident_below(baseline), 0);
  // Resident memory falls below the baseline once the excess over the cache budget is gone; what
  // is left within the budget goes after the delay (500 ms). Then the trimmer sees nothing left.
  std::this_thread::sleep_for(milliseconds(800));
  const std::size_t passes = stats().trims;
  std::this_thread::sleep_for(milliseconds(1500));
  // Polling at the 100 ms interval would run about 15 passes here.
  EXPECT_LE(stats().trims, passes + 1) << "the trimmer kept polling an idle process";
}

TEST(fork_with_trimmer, child_allocates_and_trims_and_parent_keeps_trimming) {
  // Start the trimmer: a slow path more than one interval after the first arms and pokes it.
  burst(64, 64 * kMiB);
  std::this_thread::sleep_for(milliseconds(150));
  burst(64, 64 * kMiB);
  std::thread busy([] { burst(256, 64 * kMiB); });  // another thread mid-allocation at fork time
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::vector<void*> blocks(100000);
    for (void*& p : blocks) p = sp_malloc(100);
    for (void* p : blocks) sp_free(p);
    void* big = sp_malloc(64 * kMiB);
    std::memset(big, 1, 64 * kMiB);
    sp_free(big);
    sp_trim();
    burst(64, 128 * kMiB);  // and the child's own trimmer starts lazily and works
    _exit(resident_bytes() < 512 * kMiB ? 0 : 3);
  }
  busy.join();
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const std::size_t baseline = resident_bytes();
  burst(64, 256 * kMiB);
  EXPECT_GE(wait_for_resident_below(baseline), 0) << "the parent's trimmer must keep working";
}

}  // namespace
