#include "trim.hpp"

#include <pthread.h>
#include <time.h>
#include <cerrno>

#include <mutex>

#include "bin.hpp"
#include "clock.hpp"
#include "heap.hpp"
#include "heap_lifecycle.hpp"
#include "options.hpp"
#include "segment.hpp"

namespace slabpool::detail {

std::atomic<clock_fn> g_test_clock = nullptr;
std::atomic<std::uint64_t> g_next_trim_ms = 0;

namespace {

std::atomic<std::size_t> g_passes = 0;

// Callbacks run after each pass (sp_on_trim). A fixed table: registration must never allocate.
constexpr unsigned kTrimCallbacks = 16;
struct trim_callback {
  std::atomic<int (*)(void*)> fn = nullptr;
  std::atomic<void*> context = nullptr;
};
trim_callback g_callbacks[kTrimCallbacks];
std::mutex g_callbacks_lock;  // serialises registration; passes read the table without it

// Runs the callbacks; true when one of them still holds something to age.
bool run_trim_callbacks() {
  bool holding = false;
  for (trim_callback& slot : g_callbacks) {
    int (*fn)(void*) = slot.fn.load(std::memory_order_acquire);
    if (fn != nullptr && fn(slot.context.load(std::memory_order_relaxed)) != 0) holding = true;
  }
  return holding;
}

// --- the background trimmer ----------------------------------------------------------------------
struct trimmer_state {
  pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t wake;
  pthread_t thread{};
  bool started = false;
  bool starting = false;  // pthread_create in progress (outside the mutex)
  bool stop = false;
  bool sleeping_until_woken = false;  // nothing held: waits for a slow path to signal
};
trimmer_state g_trimmer;
std::atomic<bool> g_activity = false;  // a slow path ran since the trimmer's last pass

// Longest sleep while memory is held but nothing changed: bounds how late a burst freed purely
// through fast paths (which never signal) is noticed.
constexpr std::uint64_t kMaxBackoffMs = 1000;

void sleep_ms_locked(std::uint64_t ms) {
  timespec deadline{};
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += static_cast<time_t>(ms / 1000);
  deadline.tv_nsec += static_cast<long>((ms % 1000) * 1000000);
  if (deadline.tv_nsec >= 1000000000) {
    deadline.tv_sec += 1;
    deadline.tv_nsec -= 1000000000;
  }
  pthread_cond_timedwait(&g_trimmer.wake, &g_trimmer.mutex, &deadline);
}

void* trimmer_main(void*) {
  pthread_setname_np(pthread_self(), "slabpool-trim");  // visible in top, ps -L, /proc
  unsigned quiet_passes = 0;
  pthread_mutex_lock(&g_trimmer.mutex);
  while (!g_trimmer.stop) {
    const std::uint64_t interval = static_cast<std::uint64_t>(option(SP_OPTION_TRIM_INTERVAL_MS));
    if (option(SP_OPTION_BACKGROUND_TRIM) == 0) {  // disabled at run time: wait to be re-enabled
      g_trimmer.sleeping_until_woken = true;
      pthread_cond_wait(&g_trimmer.wake, &g_trimmer.mutex);
      continue;
    }
    pthread_mutex_unlock(&g_trimmer.mutex);
    const trim_result result = trim_pass(false);
    const bool activity = g_activity.exchange(false, std::memory_order_relaxed);
    pthread_mutex_lock(&g_trimmer.mutex);
    if (g_trimmer.stop) break;
    if (result.returned != 0 || result.pending || activity) {
      quiet_passes = 0;
    } else if (quiet_passes < 16) {
      ++quiet_passes;
    }
    if (!result.pending && !result.held && !activity) {
      g_trimmer.sleeping_until_woken = true;  // nothing could become free without a slow path
      pthread_cond_wait(&g_trimmer.wake, &g_trimmer.mutex);
      continue;
    }
    std::uint64_t wait = interval << (quiet_passes < 4 ? quiet_passes : 4);
    if (wait > kMaxBackoffMs && wait > interval)
      wait = kMaxBackoffMs > interval ? kMaxBackoffMs : interval;
    sleep_ms_locked(wait);
  }
  pthread_mutex_unlock(&g_trimmer.mutex);
  return nullptr;
}

// Starts the trimmer if it is enabled and not running, or wakes it from an open-ended sleep.
void trimmer_poke() {
  pthread_mutex_lock(&g_trimmer.mutex);
  const bool start = !g_trimmer.started && !g_trimmer.starting && !g_trimmer.stop;
  if (start) {
    g_trimmer.starting = true;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&g_trimmer.wake, &attr);
    pthread_condattr_destroy(&attr);
  } else if (g_trimmer.started && g_trimmer.sleeping_until_woken) {
    g_trimmer.sleeping_until_woken = false;
    pthread_cond_signal(&g_trimmer.wake);
  }
  pthread_mutex_unlock(&g_trimmer.mutex);
  if (!start) return;
  // Outside the lock: pthread_create allocates (the new thread's TLS), and that allocation may
  // reach this function again through a slow path's clock check.
  pthread_attr_t thread_attr;
  pthread_attr_init(&thread_attr);
  pthread_attr_setstacksize(&thread_attr, 64 * 1024);
  pthread_t thread;
  const bool created = pthread_create(&thread, &thread_attr, trimmer_main, nullptr) == 0;
  pthread_attr_destroy(&thread_attr);
  pthread_mutex_lock(&g_trimmer.mutex);
  g_trimmer.starting = false;
  g_trimmer.started = created;
  if (created) g_trimmer.thread = thread;
  pthread_mutex_unlock(&g_trimmer.mutex);
}

// Stops the trimmer when the process exits normally, so it never runs while exit tears down.
__attribute__((destructor)) void trimmer_stop_at_exit() {
  pthread_mutex_lock(&g_trimmer.mutex);
  const bool started = g_trimmer.started;
  g_trimmer.stop = true;
  if (started) pthread_cond_signal(&g_trimmer.wake);
  pthread_mutex_unlock(&g_trimmer.mutex);
  if (started) pthread_join(g_trimmer.thread, nullptr);
}

struct pass_context {
  std::uint64_t now;
  std::uint64_t delay;
  bool force;
  heap* self;
  trim_result* result;
};

void trim_one_heap(heap* h, void* raw) {
  auto* ctx = static_cast<pass_context*>(raw);
  const bool is_owner = h == ctx->self;
  if (is_owner) {
    h->lock.lock();
  } else if (!h->lock.try_lock()) {
    ctx->result->pending = true;  // its owner is in a slow path right now: next pass
    return;
  }
  heap_trim(h, ctx->now, ctx->delay, ctx->force, is_owner, ctx->result);
  h->lock.unlock();
}

}  // namespace

void heap_trim(heap* h, std::uint64_t now_ms, std::uint64_t delay_ms, bool force, bool is_owner,
               trim_result* result) noexcept {
  const auto budget = static_cast<std::uint64_t>(option(SP_OPTION_THREAD_CACHE_BYTES));
  std::uint64_t kept = 0;
  for (unsigned cls = 0; cls < kClassCount; ++cls) {
    heap_bin& bin = h->bins[cls];
    slab* s = bin.ring;
    const std::uint32_t count = bin.slabs;
    for (std::uint32_t i = 0; i < count; ++i) {
      slab* next = s->next;
      const bool is_current = s == h->current[cls];
      if (is_current && !is_owner) {
        s = next;
        continue;
      }
      // Empty when every carved block is back on a free list. Then no thread can touch the slab:
      // nobody holds a block of it, and every remote push has completed. Only the owner may walk
      // its current slab's staged list; other slabs have none.
      const std::uint32_t staged = is_current ? list_length(s->free) : 0;
      if (slab_live_blocks(s, staged) != 0) {
        s->seen_empty = false;
        if (!is_current) result->held = true;
        s = next;
        continue;
      }
      if (!s->seen_empty) {
        s->seen_empty = true;
        s->empty_since_ms = now_ms;
      }
      const std::uint64_t bytes = std::uint64_t{s->units} << kUnitShift;
      const bool expired = force || now_ms - s->empty_since_ms >= delay_ms;
      if (!expired && kept + bytes <= budget) {
        kept += bytes;
        result->pending = true;
        s = next;
        continue;
      }
      bin_unlink(bin, s);
      if (is_current) set_current(h, cls, &g_empty_slab);
      release_span(s, s->empty_since_ms);
      s = next;
    }
  }
}

trim_result trim_pass(bool force) noexcept {
  options_init();
  trim_result result;
  const std::uint64_t now = trim_clock_ms();
  const auto limit = static_cast<std::size_t>(option(SP_OPTION_MEMORY_LIMIT));
  if (limit != 0 && segment_pool_read().resident > limit) force = true;
  pass_context ctx{now, static_cast<std::uint64_t>(option(SP_OPTION_TRIM_DELAY_MS)), force,
                   tls_heap, &result};
  for_each_live_heap(trim_one_heap, &ctx);
  if (abandoned_release_empty(now)) result.held = true;
  bool pending = false;
  result.returned = segment_pool_decay(now, ctx.delay, force, &pending);
  result.pending = result.pending || pending;
  g_passes.fetch_add(1, std::memory_order_relaxed);
  if (run_trim_callbacks()) result.held = true;
  return result;
}

void trim_tick(std::uint64_t now_ms) noexcept {
  std::uint64_t expected = g_next_trim_ms.load(std::memory_order_relaxed);
  const bool first = expected == 0;
  options_init();
  const auto interval = static_cast<std::uint64_t>(option(SP_OPTION_TRIM_INTERVAL_MS));
  if (!g_next_trim_ms.compare_exchange_strong(expected, now_ms + interval,
                                              std::memory_order_relaxed)) {
    return;  // another thread took this tick
  }
  g_activity.store(true, std::memory_order_relaxed);
  // The first tick only arms the clock: a program that lives less than one interval never
  // starts a thread or runs a pass.
  if (first) return;
  if (option(SP_OPTION_BACKGROUND_TRIM) != 0) {
    trimmer_poke();
  } else {
    trim_pass(false);
  }
}

void trimmer_fork_prepare() noexcept {
  pthread_mutex_lock(&g_trimmer.mutex);
}
void trimmer_fork_parent() noexcept {
  pthread_mutex_unlock(&g_trimmer.mutex);
}
void trimmer_fork_child() noexcept {
  // The trimmer thread does not exist in the child: start over, lazily.
  pthread_mutex_init(&g_trimmer.mutex, nullptr);
  g_trimmer.started = false;
  g_trimmer.starting = false;
  g_trimmer.sleeping_until_woken = false;
  g_next_trim_ms.store(0, std::memory_order_relaxed);
}

std::size_t trim_passes_run() noexcept {
  return g_passes.load(std::memory_order_relaxed);
}

}  // namespace slabpool::detail

using namespace slabpool::detail;

extern "C" size_t sp_trim(void) {
  return trim_pass(true).returned;
}
extern "C" size_t sp_trim_decay(void) {
  return trim_pass(false).returned;
}
extern "C" int sp_on_trim(int (*callback)(void*), void* context) {
  std::lock_guard guard(g_callbacks_lock);
  for (trim_callback& slot : g_callbacks) {
    if (slot.fn.load(std::memory_order_relaxed) != nullptr) continue;
    // Context first, then the function with release: a pass that sees the function sees its
    // context too.
    slot.context.store(context, std::memory_order_relaxed);
    slot.fn.store(callback, std::memory_order_release);
    return 0;
  }
  return ENOMEM;
}

extern "C" int sp_on_trim_remove(int (*callback)(void*), void* context) {
  std::lock_guard guard(g_callbacks_lock);
  for (trim_callback& slot : g_callbacks) {
    if (slot.fn.load(std::memory_order_relaxed) == callback &&
        slot.context.load(std::memory_order_relaxed) == context) {
      slot.fn.store(nullptr, std::memory_order_release);
      return 0;
    }
  }
  return ENOENT;
}

extern "C" void sp_set_clock(unsigned long long (*now_ms)(void)) {
  g_test_clock.store(now_ms, std::memory_order_relaxed);
}
