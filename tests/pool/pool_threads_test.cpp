// object_pool across threads: get on one thread and put on another, stealing, thread exit,
// epochs running while threads work, pool destruction with objects in other threads' caches.
#include <gtest/gtest.h>
#include <slabpool/pool.hpp>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "pool_test_util.hpp"

using pool_test::tracked;
using tracked_pool = slabpool::object_pool<tracked>;

namespace {

// A blocking queue of handles: producers get() objects, consumers drop them (put on their thread).
class handoff {
 public:
  void push(tracked_pool::handle h) {
    std::lock_guard g(m_);
    q_.push_back(std::move(h));
    cv_.notify_one();
  }
  bool pop(tracked_pool::handle& out) {
    std::unique_lock g(m_);
    cv_.wait(g, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return false;
    out = std::move(q_.front());
    q_.pop_front();
    return true;
  }
  void close() {
    std::lock_guard g(m_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<tracked_pool::handle> q_;
  bool closed_ = false;
};

void use(tracked& t) {
  bool was = false;
  ASSERT_TRUE(t.in_use.compare_exchange_strong(was, true)) << "one object, two users";
  EXPECT_EQ(t.dirty, 0) << "reset hook skipped";
  t.dirty = 1;
  ++t.uses;
  t.in_use.store(false);
}

TEST(pool_threads, get_on_one_thread_put_on_another) {
  constexpr int kProducers = 4, kConsumers = 4, kPerProducer = 20000;
  std::atomic<long> resets{0};
  {
    tracked_pool pool(
        {},
        [&](tracked& t) {
          t.dirty = 0;
          ++resets;
        },
        slabpool::pool_options{32});
    handoff q;
    std::vector<std::thread> consumers, producers;
    for (int c = 0; c < kConsumers; ++c) {
      consumers.emplace_back([&] {
        tracked_pool::handle h;
        while (q.pop(h)) h.reset();  // put on the consumer's thread
      });
    }
    for (int p = 0; p < kProducers; ++p) {
      producers.emplace_back([&] {
        for (int i = 0; i < kPerProducer; ++i) {
          auto h = pool.get();
          use(*h);
          q.push(std::move(h));
        }
      });
    }
    for (auto& t : producers) t.join();
    q.close();
    for (auto& t : consumers) t.join();
    const slabpool::pool_stats s = pool.stats();
    EXPECT_EQ(s.gets, std::uint64_t{kProducers} * kPerProducer);
    EXPECT_EQ(s.puts, s.gets);
    EXPECT_EQ(static_cast<std::uint64_t>(resets.load()), s.puts);
    EXPECT_GT(s.steals, 0u) << "producers never took what consumers cached";
    EXPECT_EQ(static_cast<std::uint64_t>(tracked::live()), s.cached);
  }
  EXPECT_EQ(tracked::live(), 0);
}

TEST(pool_threads, epochs_while_threads_work) {
  pool_test::use_fake_clock();
  {
    tracked_pool pool({}, [](tracked& t) { t.dirty = 0; });
    std::atomic<bool> stop{false};
    std::vector<std::thread> workers;
    for (int w = 0; w < 3; ++w) {
      workers.emplace_back([&] {
        std::vector<tracked_pool::handle> held;
        for (int i = 0; !stop.load() || i < 1000; ++i) {
          held.push_back(pool.get());
          use(*held.back());
          if (held.size() > 8) held.erase(held.begin(), held.begin() + 5);
        }
      });
    }
    for (int e = 0; e < 200; ++e) {
      pool_test::advance_ms(150);
      sp_trim_decay();
    }
    stop = true;
    for (auto& t : workers) t.join();
    EXPECT_GT(pool.stats().epochs, 199u);
    sp_trim_decay();
    sp_trim_decay();
    EXPECT_EQ(pool.stats().cached, 0u);
    EXPECT_EQ(tracked::live(), 0);
  }
  EXPECT_EQ(tracked::live(), 0);
}

TEST(pool_threads, exiting_thread_gives_its_cache_back) {
  {
    tracked_pool pool;
    std::thread([&] {
      std::vector<tracked_pool::handle> held;
      for (int i = 0; i < 10; ++i) held.push_back(pool.get());
    }).join();
    EXPECT_EQ(pool.stats().cached, 10u);
    // The exited thread's objects serve this thread, which adopts its orphaned cache.
    std::vector<tracked_pool::handle> held;
    for (int i = 0; i < 10; ++i) held.push_back(pool.get());
    EXPECT_EQ(pool.stats().misses, 10u) << "only the exited thread's first ten were made";
    held.clear();
    // A new thread steals from this thread's cache rather than making an object.
    std::thread([&] { auto h = pool.get(); }).join();
    EXPECT_EQ(pool.stats().misses, 10u);
  }
  EXPECT_EQ(tracked::live(), 0);
}

TEST(pool_threads, pool_dies_while_threads_keep_running) {
  // Threads that used a pool outlive it, then exit: their stale table entries are skipped.
  std::mutex m;
  std::condition_variable cv;
  int phase = 0;
  auto pool = std::make_unique<tracked_pool>();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      { auto h = pool->get(); }
      std::unique_lock g(m);
      ++phase;
      cv.notify_all();
      cv.wait(g, [&] { return phase >= 100; });
    });
  }
  {
    std::unique_lock g(m);
    cv.wait(g, [&] { return phase == 4; });
  }
  EXPECT_GE(tracked::live(), 1);
  pool.reset();  // objects still cached by the 4 live threads are destroyed here
  EXPECT_EQ(tracked::live(), 0);
  {
    std::lock_guard g(m);
    phase = 100;
    cv.notify_all();
  }
  for (auto& t : threads) t.join();
  tracked_pool next;  // likely reuses the index the old pool had
  std::thread([&] { auto h = next.get(); }).join();
  EXPECT_EQ(next.stats().cached, 1u);
}

TEST(pool_threads, thread_exit_while_pool_is_destroyed) {
  for (int round = 0; round < 50; ++round) {
    auto pool = std::make_unique<tracked_pool>();
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) threads.emplace_back([&] { auto h = pool->get(); });
    for (auto& t : threads) t.join();
    pool.reset();
  }
  EXPECT_EQ(tracked::live(), 0);
}

}  // namespace
