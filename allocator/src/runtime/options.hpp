// Run-time options: one table, read once from SLABPOOL_* environment variables, also settable
// through sp_option_set(). A malformed value or unknown name warns once and keeps the default.
#pragma once

#include <atomic>
#include <cstdint>

#include "slabpool/slabpool.h"

namespace slabpool::detail {

struct option_spec {
  const char* env_name;        // SLABPOOL_...
  const char* form;            // the accepted form, quoted in warnings
  const char* meaning;         // one line, quoted when a value is rejected
  std::int64_t default_value;  // the value before the environment or sp_option_set changes it
  std::int64_t min_value;
  std::int64_t max_value;
  bool is_size;  // accepts k/M/G suffixes
};

inline constexpr int kOptionCount = SP_OPTION_COUNT_;
extern const option_spec kOptionSpecs[kOptionCount];

// Values, readable from any thread without a lock.
extern std::atomic<std::int64_t> g_option_values[kOptionCount];

// Reads the environment once (idempotent, thread-safe, never allocates). Called by the process
// layer's start-up and by the options API; nothing else reads the environment.
void options_init() noexcept;

inline std::int64_t option(sp_option which) noexcept {
  return g_option_values[which].load(std::memory_order_relaxed);
}

// Parses `text` for option `which`; false when malformed or out of range.
bool parse_option_value(sp_option which, const char* text, std::int64_t* out) noexcept;

}  // namespace slabpool::detail
