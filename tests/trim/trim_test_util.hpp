// Helpers for the trim tests: a fake clock, the process's resident memory, and option setup.
#pragma once

#include <slabpool/slabpool.h>

#include <atomic>
#include <cstddef>
#include <cstdio>

namespace trim_test {

inline std::atomic<unsigned long long> g_fake_now{1000};
inline unsigned long long fake_clock() {
  return g_fake_now.load();
}
inline void advance_ms(unsigned long long ms) {
  g_fake_now += ms;
}

// Deterministic decay: no background thread, the fake clock, and the given delay.
inline void use_fake_clock(long long delay_ms) {
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  sp_option_set(SP_OPTION_TRIM_DELAY_MS, delay_ms);
  sp_set_clock(fake_clock);
}

inline constexpr std::size_t kMiB = 1024 * 1024;

// Resident bytes of this process (/proc/self/statm).
inline std::size_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  unsigned long long total = 0, resident = 0;
  if (f == nullptr) return 0;
  if (std::fscanf(f, "%llu %llu", &total, &resident) != 2) resident = 0;
  std::fclose(f);
  return static_cast<std::size_t>(resident) * 4096;
}

inline sp_stats stats() {
  sp_stats s;
  sp_stats_get(&s);
  return s;
}

}  // namespace trim_test
