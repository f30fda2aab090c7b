// Producer/consumer pipeline: producers build messages (a `new`ed header plus a malloc'd payload)
// and pass them in batches through a bounded queue; consumers read and free them. Every block is
// freed by a thread other than the one that allocated it, the pattern that defeats allocators which
// only cache per thread. Prints one machine-readable RESULT line.
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "bench_alloc.hpp"
#include "bench_util.hpp"

namespace {

struct message {
  uint64_t seq;
  size_t size;
  unsigned char* payload;
};

using batch = std::vector<message*>;
constexpr size_t kBatch = 64;

// Bounded queue of batches. The bound matters: without it a fast producer would turn the run into
// "allocate everything, then free everything" and measure something else.
class batch_queue {
 public:
  explicit batch_queue(size_t capacity) : capacity_(capacity) {}
  void push(batch b) {
    std::unique_lock<std::mutex> lock(mu_);
    not_full_.wait(lock, [&] { return q_.size() < capacity_; });
    q_.push_back(std::move(b));
    not_empty_.notify_one();
  }
  // Returns false when the queue is closed and empty.
  bool pop(batch& out) {
    std::unique_lock<std::mutex> lock(mu_);
    not_empty_.wait(lock, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return false;
    out = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return true;
  }
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<batch> q_;
  size_t capacity_;
  bool closed_ = false;
};

void produce(batch_queue& q, uint64_t count, uint64_t seed, size_t min_size, size_t max_size) {
  bench::rng r(seed);
  batch b;
  b.reserve(kBatch);
  for (uint64_t i = 0; i < count; ++i) {
    auto* m = new message{i, min_size + r.below(max_size - min_size + 1), nullptr};
    m->payload = static_cast<unsigned char*>(bench::mem_alloc(m->size));
    std::memset(m->payload, static_cast<int>(i), m->size < 64 ? m->size : 64);
    b.push_back(m);
    if (b.size() == kBatch) {
      q.push(std::move(b));
      b = batch();
      b.reserve(kBatch);
    }
  }
  if (!b.empty()) q.push(std::move(b));
}

uint64_t consume(batch_queue& q) {
  uint64_t checksum = 0;
  batch b;
  while (q.pop(b)) {
    for (message* m : b) {
      checksum += m->payload[0] + m->seq;
      bench::mem_free(m->payload);
      delete m;
    }
  }
  return checksum;
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a(argc, argv);
  if (a.flag("--help")) {
    std::printf(
        "usage: sp_wl_pipeline [--producers N] [--consumers N] [--messages N] [--min-size B]\n"
        "                      [--max-size B] [--queue-batches N]\n"
        "N producers (default 1) send --messages messages in total (default 4000000) to N\n"
        "consumers (default 1) through a queue bounded at --queue-batches batches of 64 (default\n"
        "64). Each message is a `new`ed header plus a payload of --min-size..--max-size bytes\n"
        "(default 32..512) from malloc; consumers free both.\n"
        "Prints: RESULT workload=pipeline ... messages_per_s=.. ops_per_s=.. (ops = allocations\n"
        "plus frees, 4 per message).\n");
    return 0;
  }
  const int producers = static_cast<int>(a.num("--producers", 1));
  const int consumers = static_cast<int>(a.num("--consumers", 1));
  const auto messages = static_cast<uint64_t>(a.num("--messages", 4e6));
  const auto min_size = static_cast<size_t>(a.num("--min-size", 32));
  const auto max_size = static_cast<size_t>(a.num("--max-size", 512));
  const auto queue_batches = static_cast<size_t>(a.num("--queue-batches", 64));
  a.finish();
  if (producers < 1 || consumers < 1 || min_size < 1 || max_size < min_size || queue_batches < 1) {
    std::fprintf(stderr, "error: invalid arguments (see --help)\n");
    return 2;
  }

  batch_queue q(queue_batches);
  std::vector<std::thread> prod, cons;
  std::vector<uint64_t> sums(static_cast<size_t>(consumers));
  const double t0 = bench::now_seconds();
  for (int c = 0; c < consumers; ++c) {
    cons.emplace_back([&, c] { sums[static_cast<size_t>(c)] = consume(q); });
  }
  for (int p = 0; p < producers; ++p) {
    uint64_t share = messages / producers + (p < static_cast<int>(messages % producers) ? 1 : 0);
    prod.emplace_back(produce, std::ref(q), share, 77 + p, min_size, max_size);
  }
  for (auto& t : prod) t.join();
  q.close();
  for (auto& t : cons) t.join();
  const double elapsed = bench::now_seconds() - t0;
  uint64_t checksum = 0;
  for (uint64_t s : sums) checksum += s;
  std::printf(
      "RESULT workload=pipeline api=%s producers=%d consumers=%d messages=%llu "
      "seconds=%.3f messages_per_s=%.0f ops_per_s=%.0f checksum=%llu\n",
      bench::kAllocApi, producers, consumers, static_cast<unsigned long long>(messages), elapsed,
      static_cast<double>(messages) / elapsed, 4.0 * static_cast<double>(messages) / elapsed,
      static_cast<unsigned long long>(checksum));
  return 0;
}
