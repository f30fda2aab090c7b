// The clock the decay rules read: the OS monotonic clock unless a test swapped in its own.
#pragma once

#include <atomic>
#include <cstdint>

#include "os.hpp"

namespace slabpool::detail {

using clock_fn = unsigned long long (*)();
extern std::atomic<clock_fn> g_test_clock;

inline std::uint64_t trim_clock_ms() noexcept {
  const clock_fn fn = g_test_clock.load(std::memory_order_relaxed);
  return fn == nullptr ? os::now_ms() : fn();
}

}  // namespace slabpool::detail
