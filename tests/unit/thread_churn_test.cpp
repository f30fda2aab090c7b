// Thread churn: thousands of short-lived threads allocate, free some blocks themselves and hand
// the rest to a long-lived survivor that frees them after the owner has exited. The slabs those
// threads leave behind must be reused by later threads, so mapped memory stays bounded and stops
// growing across rounds.
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "stress_blocks.hpp"

namespace {

using namespace sp_test;

// A long-lived thread that frees blocks after the threads that allocated them have exited. It
// works in lockstep with the test (settle() returns once it is done) so that every round sees
// the same sequence of allocations and frees, and mapped memory is comparable between rounds.
class survivor {
 public:
  explicit survivor(block_ledger& ledger) : ledger_(ledger), thread_([this] { run(); }) {}
  ~survivor() {
    {
      std::lock_guard guard(lock_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  void give(std::vector<tagged_block> blocks) {
    std::lock_guard guard(lock_);
    for (const tagged_block& b : blocks) incoming_.push_back(b);
  }

  // Has the survivor free its oldest blocks until it holds at most `keep`; waits for it.
  void settle(std::size_t keep) {
    std::unique_lock guard(lock_);
    keep_ = keep;
    request_ = true;
    wake_.notify_one();
    done_.wait(guard, [&] { return !request_; });
  }

 private:
  void run() {
    std::deque<tagged_block> held;
    std::unique_lock guard(lock_);
    for (;;) {
      wake_.wait(guard, [&] { return stopping_ || request_; });
      if (stopping_) break;
      for (const tagged_block& b : incoming_) held.push_back(b);
      incoming_.clear();
      while (held.size() > keep_) {
        ledger_.release(held.front());
        held.pop_front();
      }
      request_ = false;
      done_.notify_all();
    }
    for (const tagged_block& b : incoming_) held.push_back(b);
    for (const tagged_block& b : held) ledger_.release(b);
  }

  block_ledger& ledger_;
  std::mutex lock_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<tagged_block> incoming_;
  std::size_t keep_ = 0;
  bool request_ = false;
  bool stopping_ = false;
  std::thread thread_;  // last: starts after every other member is constructed
};

// One short-lived thread's work: a few dozen blocks, a third freed locally, the rest handed over.
void churn_thread(block_ledger& ledger, survivor& keeper, std::uint64_t seed) {
  rng r(seed);
  std::vector<tagged_block> mine;
  std::vector<tagged_block> handed;
  const std::size_t count = r.range(8, 48);
  for (std::size_t i = 0; i < count; ++i) {
    // Mostly small blocks over many classes, sometimes a large one.
    const std::size_t size = r.next() % 16 == 0 ? r.range(4 * kKiB, 200 * kKiB) : r.range(16, 2048);
    mine.push_back(ledger.make(size, r));
  }
  for (const tagged_block& b : mine) {
    if (r.next() % 3 == 0) {
      ledger.release(b);
    } else {
      handed.push_back(b);
    }
  }
  keeper.give(std::move(handed));
}

// Runs `threads` short-lived threads in waves of `concurrency`; after each wave the survivor
// frees down to `backlog` blocks, so many blocks outlive their thread by several waves.
void churn_round(block_ledger& ledger, survivor& keeper, std::size_t threads,
                 std::size_t concurrency, std::size_t backlog, std::uint64_t round) {
  std::vector<std::thread> wave;
  for (std::size_t i = 0; i < threads; ++i) {
    wave.emplace_back(churn_thread, std::ref(ledger), std::ref(keeper), round * 1'000'003 + i);
    if (wave.size() == concurrency || i + 1 == threads) {
      for (std::thread& t : wave) t.join();
      wave.clear();
      keeper.settle(backlog);
    }
  }
}

// Runs four rounds and returns the mapped bytes after each (everything freed at round ends).
std::vector<std::size_t> churn_rounds(std::size_t threads_per_round, std::size_t concurrency) {
  block_ledger ledger;
  std::vector<std::size_t> mapped_after_round;
  {
    survivor keeper(ledger);
    for (std::uint64_t round = 0; round < 4; ++round) {
      churn_round(ledger, keeper, threads_per_round, concurrency, 2000, round);
      keeper.settle(0);
      mapped_after_round.push_back(mapped_bytes());
    }
  }
  expect_ledger_clean(ledger);
  return mapped_after_round;
}

std::string describe(const std::vector<std::size_t>& mapped) {
  std::ostringstream text;
  text << "mapped after each round (MiB):";
  for (std::size_t m : mapped) text << ' ' << m / kMiB;
  return text.str();
}

TEST(ThreadChurn, MappedMemoryStaysBoundedAcrossRounds) {
  // Default options: trim passes run while the rounds do, so when they unmap is a matter of
  // timing. Only the absolute bound is asserted here; the round-over-round comparison is in
  // AbandonedMemoryIsReusedWithoutTrim, where nothing but reuse moves the figure.
  const std::size_t base = mapped_bytes();
  const std::vector<std::size_t> mapped = churn_rounds(scaled(2000, 100), 8);
  for (std::size_t m : mapped) EXPECT_LT(m > base ? m - base : 0, 128 * kMiB) << describe(mapped);
}

TEST(ThreadChurn, AbandonedMemoryIsReusedWithoutTrim) {
  // With no trim pass during the test, slabs of exited threads come back into use only through
  // adoption by new threads: the bounds must hold without the trimmer's help, and later rounds
  // must live on the memory earlier rounds' exited threads left behind. Round 1 starts from an
  // empty pool and packs tighter than any later round can (it measures 40 MiB, every later round
  // 64 MiB: the second round inherits half-used slabs of other threads and the split between
  // single- and multi-unit segments), so the steady state is judged from round 2 on. Without
  // adoption the rounds grew 172 -> 304 -> 428 MiB; this fails on any such growth.
  const trim_paused paused;
  const std::size_t base = mapped_bytes();
  const std::vector<std::size_t> mapped = churn_rounds(scaled(2000, 100), 8);
  EXPECT_LT(mapped[0] > base ? mapped[0] - base : 0, 128 * kMiB) << describe(mapped);
  EXPECT_LE(mapped[1], 2 * mapped[0]) << describe(mapped);
  EXPECT_LE(mapped[2], mapped[1] + 8 * kMiB) << describe(mapped);
  EXPECT_LE(mapped[3], mapped[1] + 8 * kMiB) << describe(mapped);
}

TEST(ThreadChurn, ManyThreadsAliveWhileTheSurvivorFrees) {
  // 32 threads at a time exit while the survivor is still freeing into their slabs.
  const std::size_t threads = scaled(1500, 100);
  block_ledger ledger;
  const std::size_t base = mapped_bytes();
  {
    survivor keeper(ledger);
    std::vector<std::thread> wave;
    for (std::size_t i = 0; i < threads; ++i) {
      wave.emplace_back(churn_thread, std::ref(ledger), std::ref(keeper), 7'000'000 + i);
      if (wave.size() == 32) {
        std::thread settler([&] { keeper.settle(64); });
        for (std::thread& t : wave) t.join();
        settler.join();
        wave.clear();
      }
    }
    for (std::thread& t : wave) t.join();
    keeper.settle(0);
  }
  expect_ledger_clean(ledger);
  EXPECT_LT(mapped_growth(base), 128 * kMiB);
}

}  // namespace
