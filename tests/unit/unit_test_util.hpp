// Helpers shared by the unit tests: a seeded byte pattern, a small PRNG, the stress scale and the
// allocator's mapped-memory figure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "common/pattern.hpp"
#include "common/sanitized.hpp"
#include "segment/segment.hpp"
#include "slabpool/slabpool.h"

namespace sp_test {

// The PRNG, the byte pattern and its checks are the ones the fuzz, soak and OOM tests use.
using sp_build::kSanitized;
using sp_check::check_pattern;
using sp_check::fill_pattern;
using sp_check::first_nonzero;
using sp_check::is_aligned;
using sp_check::kKiB;
using sp_check::kMiB;
using sp_check::kPatternOk;
using sp_check::pattern_word;
using sp_check::rng;
using sp_check::splitmix64;

// Seed for a pattern that also depends on where the block lives: a block handed out twice, or two
// overlapping blocks, overwrite each other's pattern and are caught at the next check.
inline std::uint64_t address_seed(const void* p, std::uint64_t seed) {
  return splitmix64(reinterpret_cast<std::uintptr_t>(p) ^ seed);
}

// Multiplier for stress iteration counts: SLABPOOL_STRESS_SCALE (a positive number, default 1).
// Sanitized builds run several times slower, so their base counts are divided by 4 to keep the
// stress files within the same wall-clock budget.
inline double stress_scale() {
  double scale = 1.0;
  if (const char* text = std::getenv("SLABPOOL_STRESS_SCALE")) {
    char* end = nullptr;
    const double value = std::strtod(text, &end);
    if (end != text && value > 0) scale = value;
  }
  return kSanitized ? scale / 4 : scale;
}

// `base` iterations scaled, never below `floor` so a tiny scale still exercises the code.
inline std::size_t scaled(std::size_t base, std::size_t floor = 1) {
  const auto n = static_cast<std::size_t>(static_cast<double>(base) * stress_scale());
  return n < floor ? floor : n;
}

inline std::size_t mapped_bytes() {
  return slabpool::detail::segment_bytes_mapped();
}

// Growth of mapped memory since `base`; 0 when a trim returned more than was added.
inline std::size_t mapped_growth(std::size_t base) {
  const std::size_t now = mapped_bytes();
  return now > base ? now - base : 0;
}

// Keeps trim passes out of a test's way (no background trimmer, slow-path checks a minute apart)
// and restores the options after it: memory then comes back into use only by reuse, which is
// what the test observes. A pass already due may still run once.
class trim_paused {
 public:
  trim_paused()
      : background_(sp_option_get(SP_OPTION_BACKGROUND_TRIM)),
        interval_(sp_option_get(SP_OPTION_TRIM_INTERVAL_MS)) {
    sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
    sp_option_set(SP_OPTION_TRIM_INTERVAL_MS, 60000);
  }
  ~trim_paused() {
    sp_option_set(SP_OPTION_TRIM_INTERVAL_MS, interval_);
    sp_option_set(SP_OPTION_BACKGROUND_TRIM, background_);
  }
  trim_paused(const trim_paused&) = delete;
  trim_paused& operator=(const trim_paused&) = delete;

 private:
  long long background_;
  long long interval_;
};

}  // namespace sp_test
