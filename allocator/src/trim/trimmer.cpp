// The background trimmer: one thread that runs decay passes while memory may need returning and
// sleeps for as long as nothing can change without a slow path (which wakes it).
#include <atomic>

#include "platform/platform.hpp"
#include "runtime/options.hpp"
#include "slabpool/detail/locks.hpp"
#include "trim.hpp"

namespace slabpool::detail {
namespace {

struct trimmer_state {
  wait_lock lock;  // guards the fields below; the trimmer sleeps on it
  thread_handle thread{};
  bool started = false;
  bool starting = false;  // thread start in progress (outside the lock)
  bool stop = false;
  bool sleeping_until_woken = false;  // nothing held: waits for a slow path to signal
};
trimmer_state g_trimmer;
std::atomic<bool> g_activity = false;  // a slow path ran since the trimmer's last pass

// Longest sleep while memory is held but nothing changed: bounds how late a burst freed purely
// through fast paths (which never signal) is noticed.
constexpr std::uint64_t kMaxBackoffMs = 1000;

// The trimmer's mutex with the hierarchy's books kept (fork handlers use the bare mutex).
void trimmer_lock() {
  lock_rank_acquire(lock_rank::trimmer);
  os::wait_lock_acquire(g_trimmer.lock);
}
void trimmer_unlock() {
  os::wait_lock_release(g_trimmer.lock);
  lock_rank_release(lock_rank::trimmer);
}

void* trimmer_main(void*) {
  unsigned quiet_passes = 0;
  trimmer_lock();
  while (!g_trimmer.stop) {
    const std::uint64_t interval = static_cast<std::uint64_t>(option(SP_OPTION_TRIM_INTERVAL_MS));
    if (option(SP_OPTION_BACKGROUND_TRIM) == 0) {  // disabled at run time: wait to be re-enabled
      g_trimmer.sleeping_until_woken = true;
      os::wait_lock_sleep(g_trimmer.lock);
      continue;
    }
    trimmer_unlock();
    const trim_result result = trim_pass(false);
    const bool activity = g_activity.exchange(false, std::memory_order_relaxed);
    trimmer_lock();
    if (g_trimmer.stop) break;
    if (result.returned != 0 || result.pending || activity) {
      quiet_passes = 0;
    } else if (quiet_passes < 16) {
      ++quiet_passes;
    }
    if (!result.pending && !result.held && !activity) {
      g_trimmer.sleeping_until_woken = true;  // nothing could become free without a slow path
      os::wait_lock_sleep(g_trimmer.lock);
      continue;
    }
    std::uint64_t wait = interval << (quiet_passes < 4 ? quiet_passes : 4);
    if (wait > kMaxBackoffMs && wait > interval)
      wait = kMaxBackoffMs > interval ? kMaxBackoffMs : interval;
    os::wait_lock_sleep_ms(g_trimmer.lock, wait);
  }
  trimmer_unlock();
  return nullptr;
}

// Starts the trimmer if it is enabled and not running, or wakes it from an open-ended sleep.
void trimmer_poke() {
  trimmer_lock();
  const bool start = !g_trimmer.started && !g_trimmer.starting && !g_trimmer.stop;
  if (start) {
    g_trimmer.starting = true;
  } else if (g_trimmer.started && g_trimmer.sleeping_until_woken) {
    g_trimmer.sleeping_until_woken = false;
    os::wait_lock_signal(g_trimmer.lock);
  }
  trimmer_unlock();
  if (!start) return;
  // Outside the lock: starting a thread allocates (the new thread's TLS), and that allocation may
  // reach this function again through a slow path's clock check.
  thread_handle thread{};
  const bool created = os::thread_start(thread, trimmer_main, "slabpool-trim");
  trimmer_lock();
  g_trimmer.starting = false;
  g_trimmer.started = created;
  if (created) g_trimmer.thread = thread;
  trimmer_unlock();
}

}  // namespace

void trimmer_note_activity() noexcept {
  g_activity.store(true, std::memory_order_relaxed);
}

void trimmer_wake() noexcept {
  trimmer_poke();
}

void trimmer_stop() noexcept {
  trimmer_lock();
  const bool started = g_trimmer.started;
  g_trimmer.stop = true;
  if (started) os::wait_lock_signal(g_trimmer.lock);
  trimmer_unlock();
  if (started) os::thread_join(g_trimmer.thread);
}

void trimmer_fork_prepare() noexcept {
  os::wait_lock_acquire(g_trimmer.lock);
}
void trimmer_fork_parent() noexcept {
  os::wait_lock_release(g_trimmer.lock);
}
void trimmer_fork_child() noexcept {
  // The trimmer thread does not exist in the child: start over, lazily.
  os::wait_lock_reset_in_child(g_trimmer.lock);
  g_trimmer.started = false;
  g_trimmer.starting = false;
  g_trimmer.sleeping_until_woken = false;
  g_next_trim_ms.store(0, std::memory_order_relaxed);
}

}  // namespace slabpool::detail
