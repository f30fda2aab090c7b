// slabpool — the time resource_pool's borrow and return read (not a public API).
//
// Reading CLOCK_MONOTONIC_COARSE costs ~10 ns on a VM: two reads per borrow+return are more than
// the rest of the uncontended path. So borrow and return read a process-wide cached copy of it,
// and whoever reads the real clock anyway refreshes the copy: every housekeeping pass (each trim
// pass while a pool holds objects, or housekeep()), every slow path (creation, validation, a
// waiter resolving its deadline), and each thread on every kRpClockEvery-th return.
//
// Staleness bound S: with the background trimmer on (default), at most one trim interval
// (SLABPOOL_TRIM_INTERVAL_MS, 100 ms) plus a pass, plus the coarse clock's own tick (~4 ms). With
// it off, the time since the last housekeep() call or the thread's last 64 returns.
// What depends on it, and which way it errs, is in the README ("resource_pool's clock").
//
// A fake clock in the pool's options bypasses the cache entirely: tests stay exact.
#pragma once

#include <atomic>
#include <cstdint>

#include "slabpool/export.h"

namespace slabpool::detail {

struct alignas(64) rp_clock_cache {
  std::atomic<std::int64_t> ns{0};  // the latest reading, with bit 0 clear (see rp_stamp_exact)
};
// One copy for the whole process (not inline: a header-only copy per DSO would go stale).
extern SLABPOOL_API rp_clock_cache rp_clock;

// A cached read refreshes every this many reads per thread, so a busy thread bounds the
// staleness itself even when nothing else refreshes.
inline constexpr unsigned kRpClockEvery = 64;
inline constinit thread_local unsigned t_rp_clock_budget = 0;  // cached reads left; 0: refresh

// Reads the real clock (CLOCK_MONOTONIC_COARSE, or the test source), advances the cache to it
// and returns the reading. Never fails.
SLABPOOL_API std::int64_t rp_clock_refresh() noexcept;

// The cached time, as is: at most S behind the real clock, never ahead of it. Never fails.
inline std::int64_t rp_cached_now_quiet() noexcept {
  return rp_clock.ns.load(std::memory_order_relaxed);
}

// The same, counting toward this thread's next real read (one of every kRpClockEvery). Never
// fails.
inline std::int64_t rp_cached_now() noexcept {
  if (t_rp_clock_budget-- == 0) [[unlikely]] {
    t_rp_clock_budget = kRpClockEvery - 1;
    return rp_clock_refresh();
  }
  return rp_clock.ns.load(std::memory_order_relaxed);
}

// An idle_since stamp is exact (bit 0 set: read from the real clock, or corrected by
// housekeeping) or cached (bit 0 clear: the return happened at or after it, up to S later).
inline std::int64_t rp_stamp_exact(std::int64_t t) noexcept {
  return t | 1;
}
inline bool rp_stamp_is_exact(std::int64_t t) noexcept {
  return (t & 1) != 0;
}

// For tests: `source` replaces the real clock behind the cache (nullptr restores it), and
// rp_clock_set forces the cached value (also backwards, to simulate a stale cache).
SLABPOOL_API void rp_clock_set_source(std::int64_t (*source)() noexcept) noexcept;
SLABPOOL_API void rp_clock_set(std::int64_t ns) noexcept;

}  // namespace slabpool::detail
