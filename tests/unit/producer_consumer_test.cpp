// Producer/consumer: one thread allocates, another frees. Every free is remote, so the producer
// only gets memory back through its slabs' remote lists; if it did not, mapped memory would grow
// with the number of blocks ever allocated instead of the number in flight.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "slabpool/slabpool.h"
#include "unit_test_util.hpp"

namespace {

using namespace sp_test;

// Batches of pointers, at most `limit` batches in flight: the producer waits when it is full.
class batch_queue {
 public:
  explicit batch_queue(std::size_t limit) : limit_(limit) {}

  void push(std::vector<void*> batch) {
    std::unique_lock guard(lock_);
    not_full_.wait(guard, [&] { return batches_.size() < limit_; });
    batches_.push_back(std::move(batch));
    not_empty_.notify_one();
  }
  // An empty batch means the producer is done.
  std::vector<void*> pop() {
    std::unique_lock guard(lock_);
    not_empty_.wait(guard, [&] { return !batches_.empty(); });
    std::vector<void*> batch = std::move(batches_.front());
    batches_.pop_front();
    not_full_.notify_one();
    return batch;
  }

 private:
  std::size_t limit_;
  std::mutex lock_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<std::vector<void*>> batches_;
};

struct run_result {
  std::size_t peak_growth = 0;  // highest mapped-memory growth the producer saw
  std::size_t corrupted = 0;
  std::size_t freed = 0;
};

// Streams `total` blocks with sizes from `size_of(i)` from a producer to a consumer. Each block's
// first word holds its index, so a block handed out twice shows up as a wrong index.
template <typename SizeOf>
run_result stream_blocks(std::size_t total, std::size_t batch_size, std::size_t max_batches,
                         SizeOf size_of) {
  batch_queue queue(max_batches);
  run_result result;
  const std::size_t base = mapped_bytes();
  std::thread producer([&] {
    std::vector<void*> batch;
    batch.reserve(batch_size);
    for (std::size_t i = 0; i < total; ++i) {
      auto* p = static_cast<std::size_t*>(sp_malloc(size_of(i)));
      if (p == nullptr) break;  // the consumer's count shows the shortfall
      *p = i;
      batch.push_back(p);
      if (batch.size() == batch_size) {
        queue.push(std::move(batch));
        batch.clear();
        batch.reserve(batch_size);
        const std::size_t mapped = mapped_bytes();
        if (mapped > base) result.peak_growth = std::max(result.peak_growth, mapped - base);
      }
    }
    if (!batch.empty()) queue.push(std::move(batch));
    queue.push({});
  });
  std::thread consumer([&] {
    std::size_t expected = 0;
    for (std::vector<void*> batch = queue.pop(); !batch.empty(); batch = queue.pop()) {
      for (void* p : batch) {
        if (*static_cast<std::size_t*>(p) != expected) ++result.corrupted;
        ++expected;
        sp_free(p);
      }
    }
    result.freed = expected;
  });
  producer.join();
  consumer.join();
  const std::size_t mapped = mapped_bytes();
  if (mapped > base) result.peak_growth = std::max(result.peak_growth, mapped - base);
  return result;
}

TEST(ProducerConsumer, MappedMemoryStaysBoundedFor64ByteBlocks) {
  // 20 M blocks (1.2 GiB in total) with at most 64 K blocks (4 MiB) in flight.
  const std::size_t total = scaled(20'000'000, 200'000);
  const run_result r = stream_blocks(total, 1024, 64, [](std::size_t) { return 64; });
  EXPECT_EQ(r.freed, total);
  EXPECT_EQ(r.corrupted, 0u);
  EXPECT_LT(r.peak_growth, 64 * kMiB) << "mapped memory grew with the blocks ever allocated";
}

TEST(ProducerConsumer, MappedMemoryStaysBoundedForMixedSizes) {
  // Sizes over many classes, so the producer holds many partly freed slabs at once.
  const std::size_t total = scaled(4'000'000, 50'000);
  const run_result r = stream_blocks(total, 512, 64, [](std::size_t i) {
    return static_cast<std::size_t>(splitmix64(i) % 2048 + 8);
  });
  EXPECT_EQ(r.freed, total);
  EXPECT_EQ(r.corrupted, 0u);
  EXPECT_LT(r.peak_growth, 128 * kMiB) << "mapped memory grew with the blocks ever allocated";
}

TEST(ProducerConsumer, LargeBlocksAreRecycled) {
  // Large blocks are freed by the consumer straight to the segment pool; the producer must get
  // the same units back rather than map new segments.
  const std::size_t total = scaled(100'000, 5'000);
  const run_result r =
      stream_blocks(total, 16, 8, [](std::size_t i) { return 130 * kKiB + (i % 7) * 64 * kKiB; });
  EXPECT_EQ(r.freed, total);
  EXPECT_EQ(r.corrupted, 0u);
  // At most 144 blocks of < 600 KiB in flight: about 84 MiB.
  EXPECT_LT(r.peak_growth, 160 * kMiB) << "large blocks freed remotely were not reused";
}

}  // namespace
