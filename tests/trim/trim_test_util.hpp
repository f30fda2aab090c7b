// Helpers for the trim tests: a fake clock, the process's resident memory, and option setup.
#pragma once

#include <slabpool/slabpool.h>

#include <cstddef>

#include "common/fake_clock.hpp"
#include "common/proc_memory.hpp"

namespace trim_test {

using sp_test::advance_ms;
using sp_test::fake_clock;

// Deterministic decay: no background thread, the fake clock, and the given delay.
inline void use_fake_clock(long long delay_ms) {
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  sp_option_set(SP_OPTION_TRIM_DELAY_MS, delay_ms);
  sp_set_clock(fake_clock);
}

inline constexpr std::size_t kMiB = 1024 * 1024;

// Resident bytes of this process (/proc/self/statm).
using sp_test::resident_bytes;

inline sp_stats stats() {
  sp_stats s;
  sp_stats_get(&s);
  return s;
}

}  // namespace trim_test
