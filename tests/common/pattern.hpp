// Byte patterns shared by the unit, fuzz, soak and OOM tests: a block is filled with a pattern
// seeded by its address and a per-block number, so a block handed out twice, two overlapping
// blocks, or a stray write are all caught at the next check as a pattern mismatch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

namespace sp_check {

constexpr std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Deterministic and cheap, so a failing run can be replayed from its seed.
class rng {
 public:
  explicit rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() { return splitmix64(state_++); }
  // Uniform in [lo, hi].
  std::size_t range(std::size_t lo, std::size_t hi) { return lo + next() % (hi - lo + 1); }

 private:
  std::uint64_t state_;
};

inline std::uint64_t address_seed(const void* p, std::uint64_t salt) {
  return splitmix64(reinterpret_cast<std::uintptr_t>(p) ^ splitmix64(salt));
}

// One multiply per word keeps filling multi-MiB blocks cheap.
constexpr std::uint64_t pattern_word(std::uint64_t seed, std::size_t k) {
  return seed ^ (std::uint64_t{k} * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL);
}

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
  static constexpr unsigned char kZeros[4096] = {};
  const auto* bytes = static_cast<const unsigned char*>(p);
  for (std::size_t at = 0; at < n; at += sizeof kZeros) {
    const std::size_t len = n - at < sizeof kZeros ? n - at : sizeof kZeros;
    if (std::memcmp(bytes + at, kZeros, len) == 0) continue;
    for (std::size_t i = at;; ++i) {
      if (bytes[i] != 0) return i;
    }
  }
  return kPatternOk;
}

// Sparse patterns for big blocks, where filling every byte (and faulting in every page) would be
// nearly the whole cost of a fuzz run: every word of the first and last 4 KiB of a block of
// `filled` bytes, and one word in every 64 KiB between. 64 KiB is slabpool's unit of commit and
// decommit, so a unit decommitted or handed out twice while live still reads back wrong.
inline constexpr std::size_t kSparseAbove = 64 * 1024;

// The next word index after k that the sparse pattern covers.
constexpr std::size_t next_sparse_word(std::size_t k, std::size_t words) {
  const std::size_t tail = words > 512 ? words - 512 : 0;
  if (k + 1 < 512 || k + 1 >= tail) return k + 1;
  const std::size_t next = (k / 8192 + 1) * 8192;
  return next < tail ? next : tail;
}

inline void fill_pattern_sparse(void* p, std::size_t filled, std::uint64_t seed) {
  if (filled <= kSparseAbove) return fill_pattern(p, filled, seed);
  auto* bytes = static_cast<unsigned char*>(p);
  const std::size_t words = filled / 8;
  for (std::size_t k = 0; k < words; k = next_sparse_word(k, words)) {
    const std::uint64_t w = pattern_word(seed, k);
    std::memcpy(bytes + k * 8, &w, 8);
  }
}

// Checks the first `n` bytes of a block filled by fill_pattern_sparse(p, filled, seed).
inline std::size_t check_pattern_sparse(const void* p, std::size_t n, std::size_t filled,
                                        std::uint64_t seed) {
  if (filled <= kSparseAbove) return check_pattern(p, n, seed);
  const auto* bytes = static_cast<const unsigned char*>(p);
  const std::size_t words = filled / 8;
  const std::size_t last = n / 8;  // whole words inside [0, n)
  for (std::size_t k = 0; k < last; k = next_sparse_word(k, words)) {
    const std::uint64_t w = pattern_word(seed, k);
    if (std::memcmp(bytes + k * 8, &w, 8) != 0) return k * 8;
  }
  return kPatternOk;
}

inline bool is_aligned(const void* p, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

inline constexpr std::size_t kKiB = 1024;
inline constexpr std::size_t kMiB = 1024 * 1024;

}  // namespace sp_check
