// The clock the decay rules read: the OS's monotonic clock unless a test swapped in its own
// (sp_set_clock), so trim tests run in milliseconds and are deterministic.
#pragma once

#include <atomic>
#include <cstdint>

#include "platform/platform.hpp"

namespace slabpool::detail {

using clock_fn = unsigned long long (*)();
inline constinit std::atomic<clock_fn> g_test_clock = nullptr;

inline std::uint64_t trim_clock_ms() noexcept {
  const clock_fn fn = g_test_clock.load(std::memory_order_relaxed);
  return fn == nullptr ? os::now_ms() : fn();
}

}  // namespace slabpool::detail
