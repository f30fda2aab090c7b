#include "trim.hpp"

#include <cerrno>
#include <mutex>

#include "heap/bin.hpp"
#include "heap/heap.hpp"
#include "heap/heap_registry.hpp"
#include "platform/platform.hpp"
#include "runtime/clock.hpp"
#include "runtime/options.hpp"
#include "segment/segment.hpp"
#include "slabpool/detail/locks.hpp"

namespace slabpool::detail {

std::atomic<std::uint64_t> g_next_trim_ms = 0;

namespace {

std::atomic<std::size_t> g_passes = 0;

// Callbacks run after each pass (sp_on_trim). A fixed table: registration must never allocate.
// Each slot is a small seqlock: a pass reads the function and its context between two reads of
// `sequence` and calls them only if it did not change (and was even), so a slot removed and reused
// meanwhile can never pair one registration's function with another's context. `running` counts
// the passes inside the slot, so sp_on_trim_remove can wait until none still calls it.
constexpr unsigned kTrimCallbacks = 16;
struct trim_callback {
  std::atomic<std::uint32_t> sequence{0};  // odd while a registration is being written
  std::atomic<int (*)(void*)> fn{nullptr};
  std::atomic<void*> context{nullptr};
  std::atomic<std::uint32_t> running{0};
};
trim_callback g_callbacks[kTrimCallbacks];
constinit ranked<os_mutex> g_callbacks_lock{lock_rank::trim_callbacks};  // serialises writers

// The slot whose callback this thread is running (remove must not wait for itself), and whether
// this thread is inside a pass (a pass started from a callback, or from an allocation a callback
// makes, is skipped instead of re-entering).
constinit thread_local const trim_callback* t_running_callback SLABPOOL_TLS_MODEL = nullptr;
constinit thread_local bool t_in_pass SLABPOOL_TLS_MODEL = false;

// Publishes (fn, context) in `slot` as one unit. Caller holds g_callbacks_lock.
void publish(trim_callback& slot, int (*fn)(void*), void* context) {
  const std::uint32_t sequence = slot.sequence.load(std::memory_order_relaxed);
  slot.sequence.store(sequence + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  slot.fn.store(fn, std::memory_order_relaxed);
  slot.context.store(context, std::memory_order_relaxed);
  // seq_cst: ordered before remove's read of `running` (see run_trim_callbacks).
  slot.sequence.store(sequence + 2, std::memory_order_seq_cst);
}

// Runs the callbacks; true when one of them still holds something to age. Called with no lock.
bool run_trim_callbacks() {
  bool holding = false;
  for (trim_callback& slot : g_callbacks) {
    if (slot.fn.load(std::memory_order_relaxed) == nullptr) continue;
    // Announce first (seq_cst, paired with publish's last store): either remove sees us running
    // and waits, or we see its update and skip.
    slot.running.fetch_add(1, std::memory_order_seq_cst);
    const std::uint32_t before = slot.sequence.load(std::memory_order_seq_cst);
    int (*fn)(void*) = slot.fn.load(std::memory_order_relaxed);
    void* context = slot.context.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if ((before & 1) == 0 && fn != nullptr &&
        slot.sequence.load(std::memory_order_relaxed) == before) {
      t_running_callback = &slot;
      if (fn(context) != 0) holding = true;
      t_running_callback = nullptr;
    }
    slot.running.fetch_sub(1, std::memory_order_release);
  }
  return holding;
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
  std::uint32_t kept_slabs = 0;
  for_each_bin_slab(h, [&](heap_bin& bin, unsigned cls, slab* s) {
    const bool is_current = s == h->current[cls];
    if (is_current && !is_owner) return;
    // Empty when every carved block is back on a free list. Then no thread can touch the slab:
    // nobody holds a block of it, and every remote push has completed. A current slab's staged
    // list is the owner's to walk; other slabs' staged lists (usually empty; checked mode and
    // the shared heap leave some) change only under h->lock, which we hold.
    const std::uint32_t staged = list_length(s->free);
    if (slab_live_blocks(s, staged) != 0) {
      s->seen_empty = false;
      if (!is_current) result->held = true;
      return;
    }
    if (!s->seen_empty) {
      s->seen_empty = true;
      s->empty_since_ms = now_ms;
    }
    const std::uint64_t bytes = std::uint64_t{s->units} << kUnitShift;
    const bool expired = force || now_ms - s->empty_since_ms >= delay_ms;
    if (!expired && kept + bytes <= budget) {
      kept += bytes;
      if (!is_current) ++kept_slabs;
      result->pending = true;
      return;
    }
    bin_unlink(bin, s);
    if (is_current) set_current(h, cls, &g_empty_slab);
    release_span(s, s->empty_since_ms);
  });
  h->empty_kept = kept_slabs;
}

trim_result trim_pass(bool force) noexcept {
  trim_result result;
  // A pass runs the callbacks, which may take pool locks, allocate and free: never while this
  // thread holds a lock (it could be one they need), never nested in another pass on this thread.
  // Skipped, it leaves the work to the next pass.
  if (t_in_pass || held_lock_ranks() != 0) {
    result.pending = true;
    return result;
  }
  t_in_pass = true;
  const std::uint64_t now = trim_clock_ms();
  const auto limit = static_cast<std::size_t>(option(SP_OPTION_MEMORY_LIMIT));
  if (limit != 0 && segment_pool_read().resident > limit) force = true;
  pass_context ctx{now, static_cast<std::uint64_t>(option(SP_OPTION_TRIM_DELAY_MS)), force,
                   tls_heap, &result};
  for_each_live_heap(trim_one_heap, &ctx);
  if (abandoned_release_empty(now)) result.held = true;
  bool pending = false;
  result.returned = segment_pool_decay(
      now, ctx.delay, force, static_cast<std::size_t>(option(SP_OPTION_CACHE_BYTES)), &pending);
  result.pending = result.pending || pending;
  g_passes.fetch_add(1, std::memory_order_relaxed);
  if (run_trim_callbacks()) result.held = true;
  t_in_pass = false;
  return result;
}

void trim_tick(std::uint64_t now_ms) noexcept {
  std::uint64_t expected = g_next_trim_ms.load(std::memory_order_relaxed);
  const bool first = expected == 0;
  const auto interval = static_cast<std::uint64_t>(option(SP_OPTION_TRIM_INTERVAL_MS));
  if (!g_next_trim_ms.compare_exchange_strong(expected, now_ms + interval,
                                              std::memory_order_relaxed)) {
    return;  // another thread took this tick
  }
  trimmer_note_activity();
  // The first tick only arms the clock: a program that lives less than one interval never
  // starts a thread or runs a pass.
  if (first) return;
  if (option(SP_OPTION_BACKGROUND_TRIM) != 0) {
    trimmer_wake();
  } else {
    trim_pass(false);
  }
}

void trim_callbacks_lock_for_fork() noexcept {
  g_callbacks_lock.raw().lock();
}
void trim_callbacks_unlock_after_fork() noexcept {
  g_callbacks_lock.raw().unlock();
}

std::size_t trim_passes_run() noexcept {
  return g_passes.load(std::memory_order_relaxed);
}

}  // namespace slabpool::detail

using namespace slabpool::detail;

extern "C" int sp_on_trim(int (*callback)(void*), void* context) {
  if (callback == nullptr) return EINVAL;
  std::lock_guard guard(g_callbacks_lock);
  for (trim_callback& slot : g_callbacks) {
    if (slot.fn.load(std::memory_order_relaxed) != nullptr) continue;
    publish(slot, callback, context);
    return 0;
  }
  return ENOMEM;
}

extern "C" int sp_on_trim_remove(int (*callback)(void*), void* context) {
  trim_callback* removed = nullptr;
  {
    std::lock_guard guard(g_callbacks_lock);
    for (trim_callback& slot : g_callbacks) {
      if (slot.fn.load(std::memory_order_relaxed) == callback &&
          slot.context.load(std::memory_order_relaxed) == context) {
        publish(slot, nullptr, nullptr);
        removed = &slot;
        break;
      }
    }
  }
  if (removed == nullptr) return ENOENT;
  // Wait, without the lock (a running callback may register or remove too), until no pass still
  // calls it: after return the caller may free `context`. From inside a callback there is no
  // waiting (it could be waiting for this very thread).
  if (t_running_callback == nullptr) {
    while (removed->running.load(std::memory_order_seq_cst) != 0) os::yield();
  }
  return 0;
}
