// Freed big blocks are kept resident and reused (issue 13): a reused block costs a fraction of the
// page faults a fresh one costs, whether it is cut from a bigger kept block or grown out of a
// smaller one; calloc still sees zeros; and the memory goes back to the OS once the decay delay
// has passed (a fake trim clock makes that exact).
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>
#include <sys/resource.h>

#include <atomic>
#include <cstddef>
#include <cstring>

namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_minflt;
}

// Page faults taken while writing every byte of p.
long faults_to_fill(void* p, std::size_t bytes) {
  const long before = minor_faults();
  std::memset(p, 0x5a, bytes);
  return minor_faults() - before;
}

// Faults a block of `bytes` costs when it comes fresh from the OS (nothing cached).
long fresh_faults(std::size_t bytes) {
  sp_trim();
  void* p = sp_malloc(bytes);
  EXPECT_NE(p, nullptr);
  const long faults = faults_to_fill(p, bytes);
  sp_free(p);
  sp_trim();
  return faults;
}

bool all_zero(const void* p, std::size_t bytes) {
  static const char zeros[4096] = {};
  const auto* c = static_cast<const char*>(p);
  for (std::size_t at = 0; at < bytes; at += sizeof(zeros)) {
    const std::size_t n = bytes - at < sizeof(zeros) ? bytes - at : sizeof(zeros);
    if (std::memcmp(c + at, zeros, n) != 0) return false;
  }
  return true;
}

std::atomic<unsigned long long> g_now{1'000'000};
unsigned long long fake_now() {
  return g_now.load();
}

class big_block_reuse : public ::testing::Test {
 protected:
  void SetUp() override {
    sp_set_clock(fake_now);  // nothing ages unless the test moves the clock
    sp_trim();               // start with nothing cached
  }
  void TearDown() override { sp_set_clock(nullptr); }
};

TEST_F(big_block_reuse, a_block_of_the_same_size_costs_almost_no_fault) {
  const long fresh = fresh_faults(16 * kMiB);
  ASSERT_GT(fresh, 0);
  void* a = sp_malloc(16 * kMiB);
  faults_to_fill(a, 16 * kMiB);
  sp_free(a);
  void* b = sp_malloc(16 * kMiB);
  const long reused = faults_to_fill(b, 16 * kMiB);
  sp_free(b);
  EXPECT_LE(reused * 4, fresh) << "fresh block: " << fresh << " faults, reused: " << reused;
}

TEST_F(big_block_reuse, a_smaller_block_is_cut_from_a_kept_one) {
  const long fresh = fresh_faults(10 * kMiB);
  ASSERT_GT(fresh, 0);
  void* a = sp_malloc(24 * kMiB);
  faults_to_fill(a, 24 * kMiB);
  sp_free(a);
  void* b = sp_malloc(10 * kMiB);
  const long reused = faults_to_fill(b, 10 * kMiB);
  sp_free(b);
  EXPECT_LE(reused * 4, fresh) << "fresh block: " << fresh << " faults, cut: " << reused;
}

TEST_F(big_block_reuse, a_bigger_block_grows_out_of_a_kept_one) {
  const long fresh = fresh_faults(24 * kMiB);
  ASSERT_GT(fresh, 0);
  void* a = sp_malloc(12 * kMiB);
  faults_to_fill(a, 12 * kMiB);
  sp_free(a);
  void* b = sp_malloc(24 * kMiB);
  const long grown = faults_to_fill(b, 24 * kMiB);
  sp_free(b);
  // About half of the block is the kept one's pages, moved: only the growth is faulted in.
  EXPECT_LE(grown * 4, fresh * 3) << "fresh block: " << fresh << " faults, grown: " << grown;
}

TEST_F(big_block_reuse, calloc_of_a_kept_block_is_zero) {
  void* a = sp_malloc(16 * kMiB);
  std::memset(a, 0xff, 16 * kMiB);
  sp_free(a);
  void* same = sp_calloc(1, 16 * kMiB);
  ASSERT_NE(same, nullptr);
  EXPECT_TRUE(all_zero(same, 16 * kMiB));
  std::memset(same, 0xff, 16 * kMiB);
  sp_free(same);
  void* cut = sp_calloc(1, 9 * kMiB);
  ASSERT_NE(cut, nullptr);
  EXPECT_TRUE(all_zero(cut, 9 * kMiB));
  std::memset(cut, 0xff, 9 * kMiB);
  sp_free(cut);
  void* grown = sp_calloc(1, 40 * kMiB);
  ASSERT_NE(grown, nullptr);
  EXPECT_TRUE(all_zero(grown, 40 * kMiB));
  sp_free(grown);
}

TEST_F(big_block_reuse, kept_blocks_go_back_once_idle_for_the_delay) {
  void* a = sp_malloc(16 * kMiB);
  faults_to_fill(a, 16 * kMiB);
  sp_free(a);
  sp_stats kept{};
  sp_stats_get(&kept);
  EXPECT_GE(kept.cached, 16 * kMiB) << "the freed block is kept";
  EXPECT_EQ(sp_trim_decay(), 0u) << "nothing has been idle for the delay yet";
  g_now += static_cast<unsigned long long>(sp_option_get(SP_OPTION_TRIM_DELAY_MS)) + 1;
  EXPECT_GE(sp_trim_decay(), 16 * kMiB);
  sp_stats after{};
  sp_stats_get(&after);
  EXPECT_LE(after.cached + 16 * kMiB, kept.cached);
}

}  // namespace
