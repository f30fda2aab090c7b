// Helpers shared by the unit tests: a seeded byte pattern, a small PRNG, the stress scale and the
// allocator's mapped-memory figure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "segment.hpp"
#include "slabpool/slabpool.h"

namespace sp_test {

constexpr std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Deterministic and cheap, so a failing stress run can be replayed from its seed.
class rng {
 public:
  explicit rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() { return splitmix64(state_++); }
  // Uniform in [lo, hi].
  std::size_t range(std::size_t lo, std::size_t hi) { return lo + next() % (hi - lo + 1); }

 private:
  std::uint64_t state_;
};

// Seed for a pattern that also depends on where the block lives: a block handed out twice, or two
// overlapping blocks, overwrite each other's pattern and are caught at the next check.
inline std::uint64_t address_seed(const void* p, std::uint64_t seed) {
  return splitmix64(reinterpret_cast<std::uintptr_t>(p) ^ seed);
}

// Word k of the pattern; a multiply per word keeps filling 64 MiB blocks fast.
constexpr std::uint64_t pattern_word(std::uint64_t seed, std::size_t k) {
  return seed ^ (std::uint64_t{k} * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL);
}

// Writes the pattern of `seed` over bytes [0, n) of p.
inline void fill_pattern(void* p, std::size_t n, std::uint64_t seed) {
  auto* bytes = static_cast<unsigned char*>(p);
  const std::size_t words = n / 8;
  for (std::size_t k = 0; k < words; ++k) {
    const std::uint64_t w = pattern_word(seed, k);
    std::memcpy(bytes + k * 8, &w, 8);
  }
  const std::uint64_t tail = pattern_word(seed, words);
  std::memcpy(bytes + words * 8, &tail, n % 8);
}

inline constexpr std::size_t kPatternOk = std::numeric_limits<std::size_t>::max();

// Offset of the first byte in [0, n) that differs from the pattern of `seed`, or kPatternOk.
inline std::size_t check_pattern(const void* p, std::size_t n, std::uint64_t seed) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  const std::size_t words = n / 8;
  for (std::size_t k = 0; k < words; ++k) {
    const std::uint64_t w = pattern_word(seed, k);
    if (std::memcmp(bytes + k * 8, &w, 8) != 0) return k * 8;
  }
  const std::uint64_t tail = pattern_word(seed, words);
  if (std::memcmp(bytes + words * 8, &tail, n % 8) != 0) return words * 8;
  return kPatternOk;
}

// Offset of the first non-zero byte in [0, n), or kPatternOk.
inline std::size_t first_nonzero(const void* p, std::size_t n) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    if (bytes[i] != 0) return i;
  }
  return kPatternOk;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

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

inline constexpr std::size_t kKiB = 1024;
inline constexpr std::size_t kMiB = 1024 * 1024;

inline bool is_aligned(const void* p, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

}  // namespace sp_test
