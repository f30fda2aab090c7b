// Freed big blocks are kept resident and reused (issue 13): a reused block costs a fraction of the
// page faults a fresh one costs, whether it is cut from a bigger kept block, grown out of a
// smaller one or glued from several; calloc still sees zeros; and the memory goes back to the OS
// once the decay delay has passed (a fake trim clock makes that exact).
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

// Allocates a block of `bytes`, writes every page of it, frees it: the stats right after.
sp_stats stats_after_freeing_a_used_block(std::size_t bytes) {
  void* p = sp_malloc(bytes);
  EXPECT_NE(p, nullptr);
  faults_to_fill(p, bytes);
  sp_free(p);
  sp_stats after{};
  sp_stats_get(&after);
  return after;
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

TEST_F(big_block_reuse, a_block_bigger_than_every_kept_one_is_glued_from_them) {
  const long fresh = fresh_faults(30 * kMiB);
  ASSERT_GT(fresh, 0);
  void* a = sp_malloc(15 * kMiB);
  void* b = sp_malloc(15 * kMiB);
  faults_to_fill(a, 15 * kMiB);
  faults_to_fill(b, 15 * kMiB);
  sp_free(a);
  sp_free(b);
  void* c = sp_malloc(30 * kMiB);
  const long glued = faults_to_fill(c, 30 * kMiB);
  sp_stats after{};
  sp_stats_get(&after);
  sp_free(c);
  // The pages of both kept blocks moved into the new one: none of it is new memory, and nothing
  // is left cached beside it (growing one of them faulted in the other's size while it sat idle).
  EXPECT_LE(glued * 8, fresh) << "fresh block: " << fresh << " faults, glued: " << glued;
  EXPECT_EQ(after.huge_cache, 0u);
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
  const sp_stats kept = stats_after_freeing_a_used_block(16 * kMiB);
  EXPECT_GE(kept.cached, 16 * kMiB) << "the freed block is kept";
  EXPECT_EQ(sp_trim_decay(), 0u) << "nothing has been idle for the delay yet";
  g_now += static_cast<unsigned long long>(sp_option_get(SP_OPTION_TRIM_DELAY_MS)) + 1;
  EXPECT_GE(sp_trim_decay(), 16 * kMiB);
  sp_stats after{};
  sp_stats_get(&after);
  EXPECT_LE(after.cached + 16 * kMiB, kept.cached);
}

// Freed huge blocks are kept until idle for the delay, whatever SLABPOOL_CACHE says: a budget
// threw away runs about to be reused (issue 13). They never raise the peak, because a new block is
// made from them before anything is mapped for it.
TEST_F(big_block_reuse, kept_blocks_are_bounded_by_the_delay_not_by_the_cache_budget) {
  const long long configured = sp_option_get(SP_OPTION_CACHE_BYTES);
  ASSERT_EQ(sp_option_set(SP_OPTION_CACHE_BYTES, 0), 0);
  const long fresh = fresh_faults(45 * kMiB);
  ASSERT_GT(fresh, 0);
  auto huge_cached = [] {
    sp_stats st{};
    sp_stats_get(&st);
    return st.huge_cache;
  };
  void* blocks[3];
  for (void*& p : blocks) {
    p = sp_malloc(15 * kMiB);
    faults_to_fill(p, 15 * kMiB);
  }
  sp_stats before{};
  sp_stats_get(&before);
  for (void* p : blocks) sp_free(p);
  EXPECT_GE(huge_cached(), 45 * kMiB) << "all three kept with a budget of 0";
  EXPECT_EQ(sp_trim_decay(), 0u) << "nor does a pass take them before the delay";
  // A block as big as the three together is made of them: no new memory (but the few pages at
  // each run's end that its block never touched), no more mapped than before.
  void* all = sp_malloc(45 * kMiB);
  const long glued_faults = faults_to_fill(all, 45 * kMiB);
  EXPECT_LE(glued_faults * 8, fresh)
      << "fresh block: " << fresh << " faults, glued: " << glued_faults;
  sp_stats glued{};
  sp_stats_get(&glued);
  EXPECT_LE(glued.mapped, before.mapped) << "the peak did not grow";
  sp_free(all);
  g_now += static_cast<unsigned long long>(sp_option_get(SP_OPTION_TRIM_DELAY_MS)) + 1;
  EXPECT_GE(sp_trim_decay(), 45 * kMiB);
  EXPECT_EQ(huge_cached(), 0u) << "idle for the delay: given back";
  sp_option_set(SP_OPTION_CACHE_BYTES, configured);
}

// realloc of a huge block to a huge size moves no byte: the kernel moves its pages (growing) or
// drops its tail (shrinking), and the old block is not kept beside the new one.
TEST_F(big_block_reuse, realloc_of_a_huge_block_keeps_its_pages_and_leaves_no_copy_behind) {
  auto* p = static_cast<unsigned char*>(sp_malloc(16 * kMiB));
  ASSERT_NE(p, nullptr);
  for (std::size_t i = 0; i < 16 * kMiB; i += 4096) p[i] = static_cast<unsigned char>(i >> 12);
  sp_stats before{};
  sp_stats_get(&before);
  auto* q = static_cast<unsigned char*>(sp_realloc(p, 64 * kMiB));
  ASSERT_NE(q, nullptr);
  // The first 16 MiB are the old pages, contents and all, already resident: no fault to read.
  const long faults_before = minor_faults();
  bool same = true;
  for (std::size_t i = 0; i < 16 * kMiB; i += 4096)
    same &= q[i] == static_cast<unsigned char>(i >> 12);
  EXPECT_TRUE(same);
  EXPECT_LT(minor_faults() - faults_before, 64) << "the pages moved with the block";
  sp_stats grown{};
  sp_stats_get(&grown);
  EXPECT_EQ(grown.huge_cache, 0u) << "the old block is not cached beside the new one";
  EXPECT_LE(grown.mapped, before.mapped + 48 * kMiB + 4 * kMiB);
  // Shrinking drops the tail where the block is.
  auto* r = static_cast<unsigned char*>(sp_realloc(q, 8 * kMiB));
  EXPECT_EQ(r, q);
  sp_stats shrunk{};
  sp_stats_get(&shrunk);
  EXPECT_LE(shrunk.mapped + 48 * kMiB, grown.mapped);
  same = true;
  for (std::size_t i = 0; i < 8 * kMiB; i += 4096)
    same &= r[i] == static_cast<unsigned char>(i >> 12);
  EXPECT_TRUE(same);
  EXPECT_GE(sp_usable_size(r), 8 * kMiB);
  sp_free(r);
}

// A freed big block kept for reuse gives way when the pool maps new segments for other blocks:
// kept beside them, it would add to the process's resident memory instead of serving it.
TEST_F(big_block_reuse, a_kept_block_gives_way_to_new_segments) {
  const sp_stats kept = stats_after_freeing_a_used_block(16 * kMiB);
  ASSERT_GE(kept.huge_cache, 16 * kMiB);
  // 24 blocks of 1 MiB: runs of units in regular segments, six new 4 MiB segments at least.
  void* blocks[24];
  for (void*& b : blocks) b = sp_malloc(kMiB);
  sp_stats after{};
  sp_stats_get(&after);
  EXPECT_LE(after.huge_cache + 8 * kMiB, kept.huge_cache) << "new segments took its place";
  EXPECT_LE(after.mapped, kept.mapped + 16 * kMiB);
  for (void* b : blocks) sp_free(b);
}

// A new span is cut from free units that are still resident before decommitted ones: reusing them
// costs no fault, and leaves no resident memory idle.
TEST_F(big_block_reuse, a_new_span_takes_resident_free_units_first) {
  // Two 1 MiB large blocks, the lower one freed and returned to the OS, then the upper one freed.
  void* a = sp_malloc(kMiB);
  void* b = sp_malloc(kMiB);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  void* low = a < b ? a : b;
  void* high = a < b ? b : a;
  faults_to_fill(low, kMiB);
  faults_to_fill(high, kMiB);
  sp_free(low);
  sp_trim();  // low's units are decommitted now
  sp_free(high);
  void* c = sp_malloc(kMiB);
  EXPECT_EQ(c, high) << "first fit would have taken the decommitted units at the lower address";
  EXPECT_LT(faults_to_fill(c, kMiB), 16);
  sp_free(c);
}

// A huge block grown by realloc takes new memory for the growth: a kept block gives way to it, as
// to a new segment, rather than stay resident beside it.
TEST_F(big_block_reuse, a_kept_block_gives_way_to_a_huge_block_growing) {
  void* p = sp_malloc(8 * kMiB);
  ASSERT_NE(p, nullptr);
  const sp_stats kept = stats_after_freeing_a_used_block(8 * kMiB);
  ASSERT_GE(kept.huge_cache, 8 * kMiB);
  void* q = sp_realloc(p, 24 * kMiB);
  ASSERT_NE(q, nullptr);
  sp_stats after{};
  sp_stats_get(&after);
  EXPECT_LE(after.huge_cache + 8 * kMiB, kept.huge_cache) << "the kept block went first";
  sp_free(q);
}

// A large block grows by realloc over the free units after it: same address, contents kept, and
// no copy of an earlier size is left resident beside it (sqlite3's sorter doubles its buffer from
// 256 KiB). Where the units after it are taken, it moves.
TEST_F(big_block_reuse, a_large_block_grows_in_place_over_the_free_units_after_it) {
  auto* p = static_cast<unsigned char*>(sp_malloc(256 * 1024));
  ASSERT_NE(p, nullptr);
  for (std::size_t i = 0; i < 256 * 1024; i += 4096) p[i] = static_cast<unsigned char>(i >> 12);
  sp_stats before{};
  sp_stats_get(&before);
  unsigned char* q = p;
  for (std::size_t size = 512 * 1024; size <= 2 * kMiB; size *= 2) {
    q = static_cast<unsigned char*>(sp_realloc(q, size));
    ASSERT_EQ(q, p) << "grew in place to " << size;
    EXPECT_GE(sp_usable_size(q), size);
  }
  bool same = true;
  for (std::size_t i = 0; i < 256 * 1024; i += 4096)
    same &= q[i] == static_cast<unsigned char>(i >> 12);
  EXPECT_TRUE(same);
  sp_stats grown{};
  sp_stats_get(&grown);
  EXPECT_EQ(grown.cached, before.cached) << "no earlier size was left behind";
  // A block taking the units right after it makes the next growth move, contents and all.
  void* blocker = sp_malloc(256 * 1024);
  ASSERT_EQ(static_cast<unsigned char*>(blocker), q + 2 * kMiB) << "first fit, right after";
  auto* moved = static_cast<unsigned char*>(sp_realloc(q, 3 * kMiB));
  ASSERT_NE(moved, nullptr);
  EXPECT_NE(moved, q);
  same = true;
  for (std::size_t i = 0; i < 256 * 1024; i += 4096)
    same &= moved[i] == static_cast<unsigned char>(i >> 12);
  EXPECT_TRUE(same);
  sp_free(moved);
  sp_free(blocker);
}

}  // namespace
