// Time-based decay: giving idle memory back to the OS.
//
// A pass (1) releases empty slabs from every heap that have stayed empty for the trim delay, or at
// once when the heap keeps more empty bytes than its budget (the victim generation: what a thread
// did not reuse during a whole delay goes back), (2) releases abandoned slabs whose blocks all came
// back, (3) decommits pool units and unmaps segments and cached huge blocks idle for the delay.
// Passes run on a background thread, on a clock check in slow paths, or through sp_trim().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "platform/platform.hpp"

namespace slabpool::detail {

struct heap;

struct trim_result {
  std::size_t returned = 0;  // bytes given back to the OS
  bool pending = false;      // free memory waits for its delay to pass
  bool held = false;         // heaps hold slabs that may become empty without a slow path
};

// One pass. `force` ignores the delay and the budgets (sp_trim()).
trim_result trim_pass(bool force) noexcept;

// Releases the empty slabs of `h` (caller holds h->lock). The owner thread may also release its
// current slabs; other threads may not, since the owner's fast path uses them without a lock.
void heap_trim(heap* h, std::uint64_t now_ms, std::uint64_t delay_ms, bool force, bool is_owner,
               trim_result* result) noexcept;

// --- the slow-path clock check ------------------------------------------------------------------
extern std::atomic<std::uint64_t> g_next_trim_ms;
void trim_tick(std::uint64_t now_ms) noexcept;

// Called by every allocation slow path: one clock read and one compare.
inline void trim_on_slow_path() noexcept {
  const std::uint64_t now = os::now_ms();
  if (now >= g_next_trim_ms.load(std::memory_order_relaxed)) [[unlikely]]
    trim_tick(now);
}

// fork(): the callback table's registration lock.
void trim_callbacks_lock_for_fork() noexcept;
void trim_callbacks_unlock_after_fork() noexcept;

// --- the background trimmer (trimmer.cpp) -------------------------------------------------------
// A slow path ran: the trimmer should look again at its next wake-up.
void trimmer_note_activity() noexcept;
// Starts the trimmer if it is enabled and not running, or wakes it from an open-ended sleep.
void trimmer_wake() noexcept;
// Stops and joins the trimmer (process exit), so it never runs while exit tears down.
void trimmer_stop() noexcept;

// fork(): the trimmer's lock, taken at its rank; the child starts without a trimmer thread (it
// is started again lazily).
void trimmer_fork_prepare() noexcept;
void trimmer_fork_parent() noexcept;
void trimmer_fork_child() noexcept;

// Number of passes run so far.
std::size_t trim_passes_run() noexcept;

}  // namespace slabpool::detail
