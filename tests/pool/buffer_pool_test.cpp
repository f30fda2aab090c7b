// buffer_pool: capacity classes, the cap (go#23199), calibration, epochs, threads.
#include <gtest/gtest.h>
#include <slabpool/buffer_pool.hpp>

#include <string>
#include <thread>
#include <vector>

#include "pool_test_util.hpp"

namespace {

TEST(buffer_pool, gives_an_empty_buffer_of_the_class_and_reuses_it) {
  slabpool::buffer_pool pool;
  const std::byte* first;
  {
    auto b = pool.get(1000);
    EXPECT_EQ(b->size(), 0u);
    EXPECT_GE(b->capacity(), 1000u);
    b->append("hello");
    first = b->data();
  }
  auto b = pool.get(700);  // same class (1 KiB)
  EXPECT_EQ(b->data(), first);
  EXPECT_EQ(b->size(), 0u) << "a cached buffer comes back cleared";
  EXPECT_EQ(pool.stats().hits, 1u);
}

TEST(buffer_pool, oversized_buffers_are_dropped_and_counted) {
  slabpool::buffer_pool pool(slabpool::buffer_pool_options{.cap = 64 * 1024});
  { auto huge = pool.get(64 << 20); }  // the go#23199 request: 64 MiB
  {
    auto grown = pool.get(4096);
    grown->resize(200 * 1024);  // grew above the cap while in use
  }
  { auto fine = pool.get(4096); }
  const slabpool::pool_stats s = pool.stats();
  EXPECT_EQ(s.drops, 2u);
  EXPECT_EQ(s.cached, 1u) << "only the buffer within the cap stays";
  EXPECT_EQ(s.gets, 3u);
  EXPECT_EQ(s.puts, 3u);
}

TEST(buffer_pool, grown_buffer_moves_to_its_new_class) {
  slabpool::buffer_pool pool;
  {
    auto b = pool.get(300);  // 512 B class
    b->resize(9000);         // now in the 8 KiB class
  }
  EXPECT_EQ(pool.class_stats(1).cached, 0u);
  auto b = pool.get(6000);  // 8 KiB class: the grown buffer serves it
  EXPECT_EQ(pool.stats().hits, 1u);
  EXPECT_GE(b->capacity(), 6000u);
}

TEST(buffer_pool, set_cap_rounds_to_a_class) {
  slabpool::buffer_pool pool;
  pool.set_cap(5000);
  EXPECT_EQ(pool.cap(), 4096u);
  { auto b = pool.get(4096); }
  { auto b = pool.get(8000); }  // above the cap: not pooled
  EXPECT_EQ(pool.stats().cached, 1u);
  EXPECT_EQ(pool.stats().drops, 1u);
}

TEST(buffer_pool, cap_calibrates_to_the_percentile_of_requests) {
  slabpool::buffer_pool pool(slabpool::buffer_pool_options{
      .cap = 1 << 30, .calibrate = true, .percentile = 0.95, .window = 100});
  for (int i = 0; i < 96; ++i) pool.get(900 + i);  // 1 KiB class
  for (int i = 0; i < 4; ++i) pool.get(10 << 20);  // rare 10 MiB requests
  // The 100th request closed the window: the 95th percentile of it is the 1 KiB class.
  EXPECT_EQ(pool.cap(), 1024u);
  const std::uint64_t drops = pool.stats().drops;
  { auto big = pool.get(10 << 20); }
  EXPECT_EQ(pool.stats().drops, drops + 1);
  { auto small = pool.get(1000); }
  EXPECT_EQ(pool.stats().drops, drops + 1);
}

TEST(buffer_pool, idle_pool_empties_after_two_epochs) {
  pool_test::use_fake_clock();
  slabpool::buffer_pool pool;
  {
    std::vector<slabpool::buffer_pool::handle> held;
    for (int i = 0; i < 6; ++i) held.push_back(pool.get(256u << (i % 3)));
  }
  ASSERT_EQ(pool.stats().cached, 6u);
  sp_trim_decay();
  EXPECT_EQ(pool.stats().cached, 6u);
  sp_trim_decay();
  EXPECT_EQ(pool.stats().cached, 0u);
  EXPECT_EQ(pool.stats().trimmed, 6u);
}

TEST(buffer_pool, release_keeps_the_buffer) {
  slabpool::byte_buffer kept;
  {
    slabpool::buffer_pool pool;
    auto b = pool.get(100);
    b->append("kept");
    kept = b.release();
    EXPECT_EQ(pool.stats().cached, 0u);
  }
  EXPECT_EQ(kept.view(), "kept");
}

TEST(buffer_pool, threads_share_buffers) {
  slabpool::buffer_pool pool;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&pool, t] {
      for (int i = 0; i < 20000; ++i) {
        auto b = pool.get(64u << (i % 8));
        const std::string text = std::to_string(t * 1000000 + i);
        b->append(text);
        ASSERT_EQ(b->view(), text);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(pool.stats().hits, pool.stats().gets * 9 / 10);
}

TEST(byte_buffer, grows_and_keeps_contents) {
  slabpool::byte_buffer b;
  for (int i = 0; i < 10000; ++i) b.push_back(static_cast<char>('a' + i % 26));
  EXPECT_EQ(b.size(), 10000u);
  EXPECT_EQ(b.view().substr(0, 3), "abc");
  b.clear();
  EXPECT_TRUE(b.empty());
  EXPECT_GE(b.capacity(), 10000u);
}

}  // namespace

namespace {

// A buffer appended to itself while it grows (the block moves): the copy must read the data, not
// the freed old block.
TEST(byte_buffer, appending_its_own_contents_survives_growth) {
  slabpool::byte_buffer b(16);
  std::string expected = "0123456789abcdef";
  b.append(expected);
  for (int round = 0; round < 12; ++round) {
    b.append(b.view());  // doubles: needs room beyond the capacity every time
    expected += expected;
    ASSERT_EQ(b.view(), expected) << "round " << round;
  }
  // A tail of itself, too.
  b.append(b.view().substr(b.size() - 3));
  expected += expected.substr(expected.size() - 3);
  EXPECT_EQ(b.view(), expected);
}

TEST(byte_buffer, append_of_an_impossible_size_throws_and_keeps_the_buffer) {
  slabpool::byte_buffer b;
  b.append("abc");
  volatile std::size_t impossible = SIZE_MAX - 1;  // not a constant the compiler could warn about
  EXPECT_THROW(b.append(b.data(), impossible), std::bad_alloc);
  EXPECT_EQ(b.view(), "abc");
}

}  // namespace
