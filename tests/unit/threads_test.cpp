// Multi-thread stress: blocks of random sizes carry a pattern derived from their address and a
// per-block seed, cross threads (random exchange through locked mailboxes, producer/consumer
// through lock-free rings) and are checked when they are freed. Sized by SLABPOOL_STRESS_SCALE.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <barrier>
#include <memory>
#include <thread>
#include <vector>

#include "stress_blocks.hpp"

namespace {

using namespace sp_test;

constexpr unsigned kThreads = 4;

TEST(Stress, RandomExchangeAmongAllThreads) {
  const std::size_t iterations = scaled(120000, 2000);
  block_ledger ledger;
  std::array<inbox, kThreads> inboxes;
  std::barrier sync(kThreads);

  auto worker = [&](unsigned id) {
    rng r(0x5eed0000 + id);
    std::vector<tagged_block> local;
    auto drain = [&] {
      for (const tagged_block& b : inboxes[id].take_all()) {
        // Free half of what arrives at once (a remote free), keep the rest to free, resize or
        // pass on later.
        if (r.next() % 2 == 0) {
          ledger.release(b);
        } else {
          local.push_back(b);
        }
      }
    };
    for (std::size_t i = 0; i < iterations; ++i) {
      tagged_block b = ledger.make(random_block_size(r), r);
      const std::uint64_t action = r.next() % 8;
      if (action < 2) {
        inboxes[(id + 1 + r.next() % (kThreads - 1)) % kThreads].put(b);
      } else {
        local.push_back(b);
      }
      if (local.size() > 256) {
        // Free, forward or resize a random local block (possibly another thread's).
        const std::size_t at = r.next() % local.size();
        tagged_block victim = local[at];
        local[at] = local.back();
        local.pop_back();
        const std::uint64_t fate = r.next() % 8;
        if (fate == 0) {
          inboxes[(id + 1) % kThreads].put(victim);
        } else if (fate == 1) {
          ledger.resize(victim, random_block_size(r), r);
          local.push_back(victim);
        } else {
          ledger.release(victim);
        }
      }
      if (i % 32 == 0) drain();
    }
    // Nobody sends after this point, so a final drain sees every block meant for this thread.
    sync.arrive_and_wait();
    drain();
    for (const tagged_block& b : local) ledger.release(b);
  };

  std::vector<std::thread> threads;
  for (unsigned id = 0; id < kThreads; ++id) threads.emplace_back(worker, id);
  for (std::thread& t : threads) t.join();
  expect_ledger_clean(ledger);
  EXPECT_GE(ledger.allocated(), iterations * kThreads);
}

// Single-producer single-consumer ring: no lock, so the only ordering between the threads is the
// release/acquire pair on the indices, as in real lock-free pipelines.
class spsc_ring {
 public:
  bool push(const tagged_block& b) {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_.load(std::memory_order_acquire) == kCapacity) return false;
    slots_[tail % kCapacity] = b;
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }
  bool pop(tagged_block& out) {
    const std::size_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_.load(std::memory_order_acquire)) return false;
    out = slots_[head % kCapacity];
    head_.store(head + 1, std::memory_order_release);
    return true;
  }

 private:
  static constexpr std::size_t kCapacity = 512;
  std::array<tagged_block, kCapacity> slots_{};
  alignas(64) std::atomic<std::size_t> head_ = 0;
  alignas(64) std::atomic<std::size_t> tail_ = 0;
};

TEST(Stress, ProducerConsumerThroughLockFreeRings) {
  const std::size_t per_producer = scaled(200000, 2000);
  block_ledger ledger;
  constexpr unsigned kPairs = kThreads / 2;
  std::vector<std::unique_ptr<spsc_ring>> rings;
  for (unsigned i = 0; i < kPairs; ++i) rings.push_back(std::make_unique<spsc_ring>());
  std::atomic<unsigned> producers_left = kPairs;

  auto producer = [&](unsigned id) {
    rng r(0xabc000 + id);
    for (std::size_t i = 0; i < per_producer; ++i) {
      const tagged_block b = ledger.make(random_block_size(r), r);
      while (!rings[id]->push(b)) std::this_thread::yield();
    }
    producers_left.fetch_sub(1);
  };
  auto consumer = [&](unsigned id) {
    rng r(0xdef000 + id);
    // The consumer also allocates for itself, so its own heap and the remote frees interleave
    // in the same size classes.
    std::vector<tagged_block> own;
    tagged_block b;
    for (;;) {
      if (rings[id]->pop(b)) {
        ledger.release(b);
        if (r.next() % 4 == 0) own.push_back(ledger.make(random_block_size(r), r));
        if (own.size() > 64) {
          ledger.release(own.front());
          own.erase(own.begin());
        }
      } else if (producers_left.load() == 0) {
        if (!rings[id]->pop(b)) break;  // the producer finished before this empty check
        ledger.release(b);
      } else {
        std::this_thread::yield();
      }
    }
    for (const tagged_block& o : own) ledger.release(o);
  };

  std::vector<std::thread> threads;
  for (unsigned i = 0; i < kPairs; ++i) {
    threads.emplace_back(producer, i);
    threads.emplace_back(consumer, i);
  }
  for (std::thread& t : threads) t.join();
  expect_ledger_clean(ledger);
  EXPECT_GE(ledger.allocated(), per_producer * kPairs);
}

TEST(Stress, PingPongReturnsBlocksToTheirOwner) {
  // Each block makes a round trip: allocated on one thread, checked and re-tagged on the other,
  // sent back and freed by its owner. Remote frees and local frees of one slab interleave.
  const std::size_t rounds = scaled(60000, 2000);
  block_ledger ledger;
  std::array<inbox, 2> boxes;
  std::atomic<bool> done[2] = {false, false};

  auto player = [&](unsigned id) {
    rng r(0x9090 + id);
    std::size_t sent = 0;
    std::size_t returned = 0;
    auto bounce = [&](tagged_block& b) {
      // Check and re-tag in place so the owner can tell the block came back intact.
      ledger.resize(b, b.size, r);
      boxes[1 - id].put(b);
    };
    while (returned < rounds) {
      if (sent < rounds && sent - returned < 128) {
        tagged_block b = ledger.make(random_block_size(r) % 2048 + 16, r);
        b.tag = id + 1;
        boxes[1 - id].put(b);
        ++sent;
      }
      for (tagged_block& b : boxes[id].take_all()) {
        if (b.tag == id + 1) {
          ledger.release(b);
          ++returned;
        } else {
          bounce(b);
        }
      }
      if (sent == rounds) std::this_thread::yield();
    }
    done[id].store(true);
    // Keep bouncing the partner's blocks until it is done too.
    while (!done[1 - id].load()) {
      for (tagged_block& b : boxes[id].take_all()) bounce(b);
      std::this_thread::yield();
    }
  };

  std::thread a(player, 0);
  std::thread b(player, 1);
  a.join();
  b.join();
  for (auto& box : boxes) {
    for (const tagged_block& left : box.take_all()) ledger.release(left);
  }
  expect_ledger_clean(ledger);
}

}  // namespace
