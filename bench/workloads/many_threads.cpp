// Many threads, each with a modest live set (issue 12): the thread-per-connection server. T threads
// (oversubscribed on purpose: 256 on 2 cores) each allocate random 16-1024 B blocks, freeing a
// random held block after every second allocation, until they hold ~256 KiB; every fourth of
// those frees is handed to the next thread and freed there. Then every thread holds its blocks at
// a barrier while the main thread reads resident memory, and all is freed. Repeated for a number
// of rounds on the same threads. Prints one machine-readable RESULT line: live bytes, RSS ÷ live
// and alloc+free throughput.
#include <sys/mman.h>

#include <algorithm>
#include <barrier>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bench_alloc.hpp"
#include "bench_util.hpp"

namespace {

struct config {
  int threads = 8;
  int rounds = 10;
  size_t live_bytes = 256 * 1024;
  size_t min_size = 16;
  size_t max_size = 1024;
};

struct held_block {
  void* p;
  size_t size;
};

constexpr size_t kHandoff = 16;  // blocks per hand-over: one lock per 16 remote frees

// The workload's own bookkeeping (which blocks a thread holds, what it hands over) lives in
// arrays mapped here, not in the allocator under test, with the pages it is expected to use
// written before the baseline reading: the RSS the rounds add is the allocator's, not ours.
template <typename T>
class fixed_array {
 public:
  fixed_array(size_t capacity, size_t prefault) : capacity_(capacity) {
    void* p = mmap(nullptr, capacity * sizeof(T), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      std::perror("mmap");
      std::exit(1);
    }
    data_ = static_cast<T*>(p);
    std::memset(static_cast<void*>(data_), 0, std::min(prefault, capacity) * sizeof(T));
  }
  fixed_array(const fixed_array&) = delete;
  fixed_array& operator=(const fixed_array&) = delete;
  ~fixed_array() { munmap(data_, capacity_ * sizeof(T)); }

  T& operator[](size_t i) { return data_[i]; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void push_back(const T& v) { data_[size_++] = v; }  // callers keep size_ < capacity_
  T& back() { return data_[size_ - 1]; }
  void pop_back() { --size_; }
  void clear() { size_ = 0; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

 private:
  T* data_ = nullptr;
  size_t capacity_ = 0;
  size_t size_ = 0;
};

// Blocks another thread handed over for freeing.
struct mailbox {
  mailbox(size_t capacity, size_t prefault) : slots(capacity, prefault) {}
  std::mutex mu;
  fixed_array<void*> slots;
};

// Everything one thread keeps.
struct worker_state {
  worker_state(size_t max_held, size_t box_slots, size_t held_prefault, size_t box_prefault)
      : held(max_held, held_prefault),
        outbox(kHandoff, kHandoff),
        scratch(box_slots, box_prefault) {}
  fixed_array<held_block> held;
  fixed_array<void*> outbox;
  fixed_array<void*> scratch;
  size_t live = 0;
  uint64_t ops = 0;
};

void drain(mailbox& box, worker_state& st) {
  {
    std::lock_guard<std::mutex> lock(box.mu);
    for (void* p : box.slots) st.scratch.push_back(p);
    box.slots.clear();
  }
  for (void* p : st.scratch) bench::mem_free(p);
  st.ops += st.scratch.size();
  st.scratch.clear();
}

void hand_over(mailbox& box, worker_state& st) {
  std::lock_guard<std::mutex> lock(box.mu);
  // Capacity: a round frees at most one block per two allocations and hands over one free in
  // four, so live_bytes / min_size / 4 + kHandoff slots always suffice (checked in main).
  for (void* p : st.outbox) box.slots.push_back(p);
  st.outbox.clear();
}

// One round of one thread: build up the live set, trading blocks with the neighbour.
void build(int id, const config& cfg, bench::rng& r, worker_state& st, mailbox& mine,
           mailbox& next) {
  const size_t span = cfg.max_size - cfg.min_size + 1;
  uint64_t allocs = 0, frees = 0;
  while (st.live < cfg.live_bytes) {
    const size_t n = cfg.min_size + r.below(span);
    void* p = bench::mem_alloc(n);
    std::memset(p, id & 0xff, n);  // the program fills what it asked for: all of it resident
    st.held.push_back({p, n});
    st.live += n;
    ++st.ops;
    if (++allocs % 2 != 0) continue;
    const size_t victim = r.below(st.held.size());
    const held_block b = st.held[victim];
    st.held[victim] = st.held.back();
    st.held.pop_back();
    st.live -= b.size;
    if (++frees % 4 == 0 && cfg.threads > 1) {
      st.outbox.push_back(b.p);
      if (st.outbox.size() == kHandoff) hand_over(next, st);
    } else {
      bench::mem_free(b.p);
      ++st.ops;
    }
    if (frees % 64 == 0) drain(mine, st);
  }
  if (!st.outbox.empty()) hand_over(next, st);
}

void free_all(worker_state& st) {
  for (const held_block& b : st.held) bench::mem_free(b.p);
  st.ops += st.held.size();
  st.held.clear();
  st.live = 0;
}

double mib(size_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a(argc, argv);
  if (a.flag("--help")) {
    std::printf(
        "usage: sp_wl_many_threads [--threads T] [--rounds R] [--live-kib K] [--min-size B]\n"
        "                          [--max-size B]\n"
        "T threads (default 8) each allocate random --min-size..--max-size B blocks (default\n"
        "16..1024, uniform, every byte written), freeing a random held block after every second\n"
        "allocation, until they hold K KiB (default 256); every fourth of those frees is handed "
        "to\n"
        "the next thread and freed there. All threads then hold their blocks at a barrier while\n"
        "the main thread reads /proc/self/statm, and free everything. R rounds (default 10) on "
        "the\n"
        "same threads. RSS is read before any thread starts (start), with the threads started and\n"
        "idle (threads: their stacks), and at each hold; overhead = (RSS at hold - RSS with the\n"
        "threads idle) / live bytes (the requested sizes held), the highest of the rounds;\n"
        "overhead_first = the same in round 1; ops_per_s = allocations + frees per second of the\n"
        "build and free phases.\n"
        "Prints: RESULT workload=many_threads threads=.. rounds=.. seconds=.. ops=.. ops_per_s=..\n"
        "rss_start_mib=.. rss_threads_mib=.. rss_hold_mib=.. live_mib=.. overhead=..\n"
        "overhead_first=.. overhead_start=..\n");
    return 0;
  }
  config cfg;
  cfg.threads = static_cast<int>(a.num("--threads", cfg.threads));
  cfg.rounds = static_cast<int>(a.num("--rounds", cfg.rounds));
  cfg.live_bytes = static_cast<size_t>(a.num("--live-kib", 256) * 1024);
  cfg.min_size = static_cast<size_t>(a.num("--min-size", static_cast<double>(cfg.min_size)));
  cfg.max_size = static_cast<size_t>(a.num("--max-size", static_cast<double>(cfg.max_size)));
  a.finish();
  if (cfg.threads < 1 || cfg.threads > 4096 || cfg.rounds < 1 || cfg.live_bytes < 1 ||
      cfg.min_size < 1 || cfg.max_size < cfg.min_size) {
    std::fprintf(stderr, "error: invalid arguments (see --help)\n");
    return 2;
  }
  const auto t = static_cast<size_t>(cfg.threads);
  // Upper bounds of one round: a thread holds fewer than live_bytes / min_size + 1 blocks,
  // allocates at most twice that, frees one block per two allocations and hands over one free in
  // four.
  const size_t max_held = cfg.live_bytes / cfg.min_size + 2;
  const size_t box_slots = max_held / 4 + 2 * kHandoff;
  // What a round is expected to use (twice the mean-size estimate) is written before the baseline.
  const size_t expect_held = 2 * cfg.live_bytes / ((cfg.min_size + cfg.max_size) / 2) + 64;
  std::vector<std::unique_ptr<mailbox>> boxes;
  std::vector<std::unique_ptr<worker_state>> states;
  for (size_t i = 0; i < t; ++i) {
    boxes.push_back(std::make_unique<mailbox>(box_slots, expect_held / 2));
    states.push_back(
        std::make_unique<worker_state>(max_held, box_slots, expect_held, expect_held / 2));
  }

  struct phase_marks {
    std::vector<size_t> rss_hold, live;
    std::vector<double> busy_s;
  } marks;
  marks.rss_hold.reserve(static_cast<size_t>(cfg.rounds));
  marks.live.reserve(static_cast<size_t>(cfg.rounds));
  marks.busy_s.reserve(static_cast<size_t>(cfg.rounds));
  // Every phase boundary is a barrier of the T workers and the main thread.
  std::barrier sync(cfg.threads + 1);
  const size_t rss_start = bench::current_rss_bytes();

  std::vector<std::thread> workers;
  workers.reserve(t);
  for (int id = 0; id < cfg.threads; ++id) {
    workers.emplace_back([&, id] {
      bench::rng r(0x5eed + static_cast<uint64_t>(id));
      worker_state& st = *states[static_cast<size_t>(id)];
      mailbox& mine = *boxes[static_cast<size_t>(id)];
      mailbox& next = *boxes[static_cast<size_t>((id + 1) % cfg.threads)];
      sync.arrive_and_wait();  // started: the main thread reads RSS with the stacks in it
      for (int round = 0; round < cfg.rounds; ++round) {
        sync.arrive_and_wait();  // go
        build(id, cfg, r, st, mine, next);
        sync.arrive_and_wait();  // every hand-over is in its mailbox
        drain(mine, st);
        sync.arrive_and_wait();  // hold: the main thread reads RSS
        sync.arrive_and_wait();  // measured
        free_all(st);
        sync.arrive_and_wait();  // round over
      }
    });
  }
  sync.arrive_and_wait();
  const size_t rss_threads = bench::current_rss_bytes();
  for (int round = 0; round < cfg.rounds; ++round) {
    const double t0 = bench::now_seconds();
    sync.arrive_and_wait();  // go
    sync.arrive_and_wait();  // built
    sync.arrive_and_wait();  // hold
    const double t1 = bench::now_seconds();
    marks.rss_hold.push_back(bench::current_rss_bytes());
    size_t live = 0;
    for (const auto& st : states) live += st->live;
    marks.live.push_back(live);
    const double t2 = bench::now_seconds();
    sync.arrive_and_wait();  // measured
    sync.arrive_and_wait();  // freed
    marks.busy_s.push_back((t1 - t0) + (bench::now_seconds() - t2));
  }
  for (std::thread& w : workers) w.join();

  uint64_t ops = 0;
  for (const auto& st : states) ops += st->ops;
  // RSS a round added over a baseline, per live byte.
  const auto ratio_to = [&](size_t base, size_t i) {
    return static_cast<double>(marks.rss_hold[i] - std::min(marks.rss_hold[i], base)) /
           static_cast<double>(marks.live[i]);
  };
  double seconds = 0;
  size_t worst = 0;
  for (size_t i = 0; i < marks.live.size(); ++i) {
    seconds += marks.busy_s[i];
    if (ratio_to(rss_threads, i) > ratio_to(rss_threads, worst)) worst = i;
  }
  const double overhead = ratio_to(rss_threads, worst);
  std::printf(
      "RESULT workload=many_threads api=%s threads=%d rounds=%d seconds=%.3f ops=%llu "
      "ops_per_s=%.0f rss_start_mib=%.1f rss_threads_mib=%.1f rss_hold_mib=%.1f live_mib=%.2f "
      "overhead=%.3f overhead_first=%.3f overhead_start=%.3f\n",
      bench::kAllocApi, cfg.threads, cfg.rounds, seconds, static_cast<unsigned long long>(ops),
      static_cast<double>(ops) / seconds, mib(rss_start), mib(rss_threads),
      mib(marks.rss_hold[worst]), mib(marks.live[worst]), overhead, ratio_to(rss_threads, 0),
      ratio_to(rss_start, worst));
  return 0;
}
