// The stats snapshot and its printers, and where they say resident memory sits.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "common/sanitized.hpp"
#include "trim_test_util.hpp"

using namespace trim_test;

namespace {

const sp_class_stats& class_of(const sp_stats& s, std::size_t block_size) {
  for (const sp_class_stats& c : s.classes) {
    if (c.block_size == block_size) return c;
  }
  static sp_class_stats none{};
  return none;
}

TEST(stats, count_live_blocks_per_class_across_threads) {
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  const sp_stats before = stats();
  std::vector<void*> mine(1000), theirs(500);
  for (void*& p : mine) p = sp_malloc(96);
  std::thread([&] {
    for (void*& p : theirs) p = sp_malloc(96);
  }).join();
  const sp_stats during = stats();
  EXPECT_EQ(class_of(during, 96).live_blocks - class_of(before, 96).live_blocks, 1500u);
  EXPECT_GE(during.allocated - before.allocated, 1500u * 96);
  EXPECT_GT(during.abandoned_slabs, 0u) << "the exited thread's slabs await adoption";
  for (void* p : mine) sp_free(p);
  for (void* p : theirs) sp_free(p);  // remote frees, counted out too
  EXPECT_EQ(class_of(stats(), 96).live_blocks, class_of(before, 96).live_blocks);
}

TEST(stats, large_blocks_and_mapped_memory) {
  const sp_stats before = stats();
  void* large = sp_malloc(1 << 20);
  void* huge = sp_malloc(16 << 20);
  const sp_stats during = stats();
  EXPECT_GE(during.allocated - before.allocated, (1u << 20) + (16u << 20));
  EXPECT_GE(during.mapped, 17u << 20);
  EXPECT_GE(during.process_rss, 1u << 20);
  sp_free(large);
  sp_free(huge);
  EXPECT_LT(stats().allocated, during.allocated);
}

TEST(stats, trim_counters_move) {
  void* p = sp_malloc(8 << 20);
  std::memset(p, 1, 8 << 20);
  sp_free(p);
  const sp_stats before = stats();
  sp_trim();
  const sp_stats after = stats();
  EXPECT_EQ(after.trims, before.trims + 1);
  EXPECT_GT(after.returned, before.returned);
}

TEST(stats, text_and_json_printers) {
  void* p = sp_malloc(200);
  char text[8192];
  const std::size_t n = sp_stats_format(text, sizeof(text), 0);
  ASSERT_LT(n, sizeof(text));
  const std::string t(text);
  EXPECT_NE(t.find("slabpool stats"), std::string::npos);
  EXPECT_NE(t.find("resident"), std::string::npos);
  EXPECT_NE(t.find("224"), std::string::npos) << "the class of a live 200-byte block is listed";
  sp_stats_format(text, sizeof(text), 1);
  const std::string j(text);
  EXPECT_EQ(j.front(), '{');
  EXPECT_EQ(j.substr(j.size() - 2), "}\n");
  for (const char* key : {"\"allocated\":", "\"resident\":", "\"mapped\":", "\"returned\":",
                          "\"trims\":", "\"classes\":[{\"block_size\":"}) {
    EXPECT_NE(j.find(key), std::string::npos) << key;
  }
  sp_free(p);
}

TEST(stats, format_truncates_safely_and_reports_the_full_length) {
  char small[16];
  const std::size_t full = sp_stats_format(small, sizeof(small), 0);
  EXPECT_GT(full, sizeof(small));
  EXPECT_EQ(small[sizeof(small) - 1], '\0');
}

}  // namespace

namespace {

// Where resident memory sits (issue 12): per class, empty slabs, caches.

TEST(stats_where, a_class_a_thread_barely_uses_pins_a_page_not_a_batch) {
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  // Three 100-byte blocks (class 112) and three 700-byte ones (class 768) in a fresh thread, read
  // while the thread still holds them.
  const sp_stats before = stats();
  sp_stats during{};
  std::thread([&] {
    void* p[6];
    for (int i = 0; i < 6; ++i) p[i] = sp_malloc(i < 3 ? 100 : 700);
    sp_stats_get(&during);
    for (void* q : p) sp_free(q);
  }).join();
  const std::size_t small = class_of(during, 112).resident - class_of(before, 112).resident;
  const std::size_t big = class_of(during, 768).resident - class_of(before, 768).resident;
  EXPECT_GT(small, 0u);
  // One page of blocks; the estimate counts the page the last carved block reaches into.
  EXPECT_LE(small, 8u * 1024) << "a small class stages a page, not a 16 KiB batch";
  EXPECT_LE(big, 8u * 1024) << "a page of 768-byte blocks, not the 64 KiB slab";
}

TEST(stats_where, many_threads_using_many_classes_lightly_stay_small_in_the_process_rss) {
  // 64 threads each hold three blocks of each class from 16 B to 256 B: the process's resident
  // memory grows by a page or two per class and thread, not by a 16 KiB batch (12 MiB here).
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  constexpr int kThreads = 64;
  const std::size_t sizes[] = {16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256};
  constexpr std::size_t kClasses = std::size(sizes);
  std::atomic<int> ready{0};
  std::atomic<bool> release{false};
  std::vector<std::thread> threads;
  const std::size_t rss_before = resident_bytes();
  const std::size_t slabs_before = stats().slab_resident;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      void* held[3 * kClasses];
      std::size_t n = 0;
      for (std::size_t size : sizes) {
        for (int i = 0; i < 3; ++i) {
          held[n] = sp_malloc(size);
          std::memset(held[n++], 1, size);
        }
      }
      ready.fetch_add(1);
      while (!release.load()) std::this_thread::yield();
      for (void* p : held) sp_free(p);
    });
  }
  while (ready.load() != kThreads) std::this_thread::yield();
  const std::size_t rss_during = resident_bytes();
  const sp_stats during = stats();
  release = true;
  for (std::thread& t : threads) t.join();
  EXPECT_LE(during.slab_resident - slabs_before, std::size_t{kThreads} * kClasses * 8 * 1024);
  // The slabs' real pages (about 4 MiB), the threads' stacks and the gtest runtime's. (Under a
  // sanitizer each thread adds its shadow and the sanitizer's own allocations: the slab figure
  // above still holds, the process's does not say anything about slabpool.)
  if (!sp_build::kSanitized) {
    EXPECT_LT(rss_during - rss_before, std::size_t{9} * kMiB);
  }
  EXPECT_GE(during.thread_resident_max, kClasses * 4096) << "a thread holds a page per class";
}

TEST(stats_where, empty_slabs_and_the_caches_are_shown_until_the_decay_returns_them) {
  use_fake_clock(1000);
  sp_trim();
  // Empty slabs the thread still holds.
  std::vector<void*> blocks(4000);
  for (void*& p : blocks) p = sp_malloc(256);
  for (void* p : blocks) sp_free(p);
  const sp_stats held = stats();
  EXPECT_GT(held.empty_slab_bytes, 0u);
  EXPECT_GT(class_of(held, 256).empty_slabs, 0u);
  EXPECT_LE(held.empty_slab_bytes, held.slab_resident);
  // A freed huge block kept for reuse.
  void* huge = sp_malloc(16 * kMiB);
  std::memset(huge, 1, 16 * kMiB);
  EXPECT_GE(stats().large_resident, 16 * kMiB);
  sp_free(huge);
  const sp_stats cached = stats();
  EXPECT_GE(cached.huge_cache, 16 * kMiB);
  EXPECT_LE(cached.huge_cache + cached.span_cache, cached.cached);
  sp_trim();
  const sp_stats trimmed = stats();
  EXPECT_EQ(trimmed.huge_cache, 0u);
  EXPECT_EQ(trimmed.span_cache, 0u);
  EXPECT_EQ(class_of(trimmed, 256).empty_slabs, 0u);
  sp_set_clock(nullptr);
}

TEST(stats_where, printers_show_where_memory_sits) {
  void* p = sp_malloc(200);
  char text[16384];
  ASSERT_LT(sp_stats_format(text, sizeof(text), 0), sizeof(text));
  const std::string t(text);
  EXPECT_NE(t.find("resident in: slabs"), std::string::npos) << t;
  EXPECT_NE(t.find("cached huge blocks"), std::string::npos) << t;
  EXPECT_NE(t.find("resident KiB"), std::string::npos) << t;
  ASSERT_LT(sp_stats_format(text, sizeof(text), 1), sizeof(text));
  const std::string j(text);
  for (const char* key :
       {"\"where\":{\"slabs\":", "\"empty_slabs\":", "\"abandoned\":", "\"thread_max\":",
        "\"span_cache\":", "\"huge_cache\":", "\"large\":", "\"resident\":"}) {
    EXPECT_NE(j.find(key), std::string::npos) << key;
  }
  sp_free(p);
}

}  // namespace
