// Deadlock hunt: everything that takes a lock, at once. Worker threads allocate and free (small,
// large, huge; cross-thread through a mailbox), use object and buffer pools and run trims; a
// controller makes pools come and go, registers trim callbacks that allocate, free and age the
// pools, makes bursts of mappings fail and flips the background trimmer; the main thread forks
// children that allocate, free and use the pools. Each case runs in its own process (checked mode
// on or off, background trim on or off) for SP_DEADLOCK_HUNT_SECONDS (default 6) and must end
// with every block intact, every child exited and no hang (the watchdog prints every stack).
#include <gtest/gtest.h>
#include <slabpool/slabpool.h>
#include <slabpool/testing.h>
#include <sys/wait.h>
#include <unistd.h>
#include <slabpool/buffer_pool.hpp>
#include <slabpool/pool.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "common/sanitized.hpp"
#include "common/watchdog.hpp"

namespace {

const sp_test::watchdog g_watchdog(600, "deadlock_hunt_test");

double hunt_seconds() {
  const char* text = std::getenv("SP_DEADLOCK_HUNT_SECONDS");
  return text != nullptr ? std::atof(text) : 6.0;
}

struct widget {
  std::uint64_t stamp;
  char bytes[56];
};
using widget_pool = slabpool::object_pool<widget>;

// A block whose bytes all hold one value derived from its address and size: checked at free.
struct block {
  unsigned char* p = nullptr;
  std::size_t size = 0;
};
unsigned char pattern_of(const block& b) {
  return static_cast<unsigned char>((reinterpret_cast<std::uintptr_t>(b.p) >> 4) ^ b.size);
}
block make_block(std::size_t size) {
  block b{static_cast<unsigned char*>(sp_malloc(size)), size};
  if (b.p != nullptr) std::memset(b.p, pattern_of(b), size);
  return b;
}
// Frees b after checking its contents; false when they changed.
bool free_block(const block& b) {
  if (b.p == nullptr) return true;
  const unsigned char expected = pattern_of(b);
  bool intact = true;
  for (std::size_t i = 0; i < b.size; i += 61) intact &= b.p[i] == expected;
  intact &= b.p[b.size - 1] == expected;
  sp_free(b.p);
  return intact;
}

std::size_t random_size(std::mt19937_64& rng) {
  const unsigned r = static_cast<unsigned>(rng() % 1000);
  if (r == 0) return (std::size_t{4} << 20) + rng() % 100000;  // huge: a mapping of its own
  if (r < 10) return 200000 + rng() % 200000;                  // large: units of a segment
  return 1 + rng() % 2048;
}

struct shared_state {
  std::atomic<bool> stop{false};
  std::atomic<bool> corrupted{false};
  std::atomic<long> operations{0};
  std::atomic<long> children{0};
  static constexpr int kMailboxSlots = 256;
  std::atomic<unsigned char*> mailbox[kMailboxSlots] = {};
  widget_pool* widgets = nullptr;
  slabpool::buffer_pool* buffers = nullptr;
};

void worker(shared_state& s, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<block> held;
  std::vector<widget_pool::handle> handles;
  long ops = 0;
  while (!s.stop.load(std::memory_order_relaxed)) {
    ++ops;
    const unsigned what = static_cast<unsigned>(rng() % 100);
    try {
      if (what < 50) {
        held.push_back(make_block(random_size(rng)));
        if (held.size() > 200) {
          const std::size_t i = rng() % held.size();
          if (!free_block(held[i])) s.corrupted = true;
          held[i] = held.back();
          held.pop_back();
        }
      } else if (what < 65) {
        // A block for whichever thread finds it next: a remote free. Its size travels in its
        // first word, the pattern fills the rest.
        block b = make_block(16 + rng() % 3000);
        if (b.p != nullptr) std::memcpy(b.p, &b.size, sizeof(b.size));
        const std::size_t slot = rng() % shared_state::kMailboxSlots;
        if (unsigned char* old = s.mailbox[slot].exchange(b.p, std::memory_order_acq_rel)) {
          block got{old, 0};
          std::memcpy(&got.size, old, sizeof(got.size));
          std::memcpy(old, &old[8], 8);  // the checked part starts after the size word
          if (!free_block(got)) s.corrupted = true;
        }
      } else if (what < 85) {
        handles.push_back(s.widgets->get());
        handles.back()->stamp = ops;
        if (handles.size() > 16 + rng() % 48) handles.clear();
      } else if (what < 93) {
        auto buffer = s.buffers->get(1 + rng() % 20000);
        buffer->append("0123456789abcdef");
        buffer->append(buffer->view());
      } else if (what < 97) {
        sp_trim_decay();
      } else if (what < 98) {
        sp_trim();
      } else {
        slabpool::pool_epoch();
      }
    } catch (const std::bad_alloc&) {
      // Mapping failures are injected on purpose: the call fails cleanly and nothing changes.
    }
  }
  for (const block& b : held) {
    if (!free_block(b)) s.corrupted = true;
  }
  s.operations.fetch_add(ops);
}

int callback_allocates(void*) {
  for (std::size_t size : {32, 900, 300000}) sp_free(sp_malloc(size));
  return 0;
}
int callback_ages_pools(void*) {
  slabpool::pool_epoch();
  return 0;
}

void controller(shared_state& s, bool flip_trimmer) {
  std::mt19937_64 rng(99);
  bool registered = false;
  while (!s.stop.load(std::memory_order_relaxed)) {
    const unsigned what = static_cast<unsigned>(rng() % 100);
    try {
      if (what < 30) {
        widget_pool pool({}, {}, {.per_thread = 1 + static_cast<std::uint32_t>(rng() % 200)});
        std::vector<widget_pool::handle> handles;
        for (int i = 0; i < 50; ++i) handles.push_back(pool.get());
        handles.clear();
        slabpool::pool_epoch();
      } else if (what < 50) {
        if (registered) {
          sp_on_trim_remove(callback_allocates, nullptr);
          sp_on_trim_remove(callback_ages_pools, nullptr);
        } else {
          sp_on_trim(callback_allocates, nullptr);
          sp_on_trim(callback_ages_pools, nullptr);
        }
        registered = !registered;
      } else if (what < 60) {
        sp_testing_fail_maps(static_cast<long>(rng() % 40));  // a burst of failed mappings
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        sp_testing_fail_maps(0);
      } else if (what < 65 && flip_trimmer) {
        sp_option_set(SP_OPTION_BACKGROUND_TRIM, static_cast<long long>(rng() % 2));
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    } catch (const std::bad_alloc&) {
    }
  }
  sp_testing_fail_maps(0);
  if (registered) {
    sp_on_trim_remove(callback_allocates, nullptr);
    sp_on_trim_remove(callback_ages_pools, nullptr);
  }
}

// The child of a fork: allocator, pools and trims must all work, whatever the parent's threads
// held at the fork.
[[noreturn]] void child_body(shared_state& s) {
  sp_test::die_with_parent();
  sp_testing_fail_maps(0);
  // No std::vector here: the child must not need the system allocator, which need not be
  // fork-safe (ASan's is not: a child forked while another thread allocates may hang in it).
  const std::size_t sizes[] = {16, 100, 3000, 300000, std::size_t{5} << 20};
  block blocks[5];
  for (int i = 0; i < 5; ++i) blocks[i] = make_block(sizes[i]);
  bool ok = true;
  for (const block& b : blocks) ok &= free_block(b);
  {
    widget_pool::handle handles[20];
    for (auto& h : handles) h = s.widgets->get();
  }
  s.buffers->get(100)->append("child");
  sp_trim();
  slabpool::pool_epoch();
  _exit(ok ? 0 : 3);
}

void hunt(bool checked, bool background_trim, bool flip_trimmer) {
  // Before the first allocation of this process: checked mode is latched by it.
  ASSERT_EQ(sp_option_set(SP_OPTION_CHECKED, checked ? 1 : 0), 0);
  ASSERT_EQ(sp_option_set(SP_OPTION_BACKGROUND_TRIM, background_trim ? 1 : 0), 0);
  ASSERT_EQ(sp_option_set(SP_OPTION_TRIM_INTERVAL_MS, 10), 0);
  shared_state s;
  auto widgets =
      std::make_unique<widget_pool>(widget_pool::factory_type{}, widget_pool::reset_type{},
                                    slabpool::pool_options{.per_thread = 8});
  auto buffers = std::make_unique<slabpool::buffer_pool>();
  s.widgets = widgets.get();
  s.buffers = buffers.get();
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; ++t) threads.emplace_back(worker, std::ref(s), 1000 + t);
  threads.emplace_back(controller, std::ref(s), flip_trimmer);

  const bool forks = !sp_build::kThreadSanitizer;  // TSan does not support fork from threads
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long>(hunt_seconds() * 1000));
  int hung = 0, failed = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!forks) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) child_body(s);
    int status = 0;
    if (!sp_test::wait_child(pid, 60, &status, "deadlock hunt child")) {
      ++hung;
      break;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
    s.children.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  s.stop = true;
  for (std::thread& t : threads) t.join();
  for (auto& slot : s.mailbox) sp_free(slot.load());
  widgets.reset();
  buffers.reset();
  std::printf("deadlock hunt: %ld operations on 4 threads, %ld forked children\n",
              s.operations.load(), s.children.load());
  EXPECT_EQ(hung, 0) << "a forked child hung (stacks above)";
  EXPECT_EQ(failed, 0) << "a forked child found damaged memory or crashed";
  EXPECT_FALSE(s.corrupted.load()) << "a block's contents changed while it was held";
  EXPECT_GT(s.operations.load(), 0);
  if (forks) {
    EXPECT_GT(s.children.load(), 0);
  }
}

TEST(deadlock_hunt, release_with_background_trim) {
  hunt(false, true, false);
}
TEST(deadlock_hunt, release_with_passes_on_slow_paths) {
  hunt(false, false, false);
}
TEST(deadlock_hunt, checked_with_background_trim) {
  hunt(true, true, false);
}
TEST(deadlock_hunt, checked_with_the_trimmer_flipping) {
  hunt(true, false, true);
}

}  // namespace
