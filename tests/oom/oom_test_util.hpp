// Helpers for the out-of-memory tests: blocks that carry a pattern (to prove that what was
// allocated before a failure is intact after it) and an address-space limit set relative to what
// the process already uses.
#pragma once

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/pattern.hpp"
#include "common/proc_memory.hpp"
#include "common/sanitized.hpp"
#include "slabpool/slabpool.h"

namespace sp_oom {

using sp_check::kKiB;
using sp_check::kMiB;

using sp_build::kSanitized;

struct kept_block {
  void* p;
  std::size_t size;
  std::uint64_t seed;
};

// Blocks allocated by a test, each filled with its own pattern when added.
class kept_blocks {
 public:
  // Reserves room for `n` entries up front: under an address-space limit the vector's own growth
  // (glibc malloc) must not be what fails.
  explicit kept_blocks(std::size_t n = 1 << 16) { blocks_.reserve(n); }
  ~kept_blocks() { free_all(); }

  // Fills p (if not null) and keeps it; returns whether it was kept.
  bool add(void* p, std::size_t size) {
    if (p == nullptr) return false;
    if (blocks_.size() == blocks_.capacity()) {
      ADD_FAILURE() << "kept_blocks: reserve more entries";
      sp_free(p);
      return false;
    }
    const kept_block b{p, size, sp_check::address_seed(p, blocks_.size())};
    sp_check::fill_pattern(p, size, b.seed);
    blocks_.push_back(b);
    return true;
  }
  // Number of blocks whose pattern changed (0 when everything is intact).
  std::size_t damaged() const {
    std::size_t n = 0;
    for (const kept_block& b : blocks_) {
      if (sp_check::check_pattern(b.p, b.size, b.seed) != sp_check::kPatternOk) ++n;
    }
    return n;
  }
  void free_all() {
    for (const kept_block& b : blocks_) sp_free(b.p);
    blocks_.clear();
  }
  std::size_t count() const { return blocks_.size(); }
  const kept_block& operator[](std::size_t i) const { return blocks_[i]; }
  kept_block& operator[](std::size_t i) { return blocks_[i]; }

 private:
  std::vector<kept_block> blocks_;
};

// Address space the process uses now (VmSize), from /proc/self/statm.
using sp_test::address_space_bytes;

// RLIMIT_AS set to the current address space plus `headroom` while the object lives; the soft
// limit goes back to what it was afterwards (only the soft limit changes, so raising it back is
// allowed). gtest itself and the C++ runtime need a little of the headroom.
class address_limit {
 public:
  explicit address_limit(std::size_t headroom) {
    getrlimit(RLIMIT_AS, &saved_);
    rlimit limit = saved_;
    limit.rlim_cur = address_space_bytes() + headroom;
    ok_ = setrlimit(RLIMIT_AS, &limit) == 0;
  }
  ~address_limit() { lift(); }
  address_limit(const address_limit&) = delete;
  address_limit& operator=(const address_limit&) = delete;
  bool ok() const { return ok_; }
  void lift() {
    if (ok_) setrlimit(RLIMIT_AS, &saved_);
    ok_ = false;
  }

 private:
  rlimit saved_{};
  bool ok_ = false;
};

// Allocates blocks of `size` with `alloc` until it returns null (kept in `blocks`); returns the
// number allocated, or SIZE_MAX when `max` allocations all succeeded (the limit did not bite).
template <typename Alloc>
std::size_t allocate_until_failure(kept_blocks& blocks, std::size_t size, std::size_t max,
                                   Alloc alloc) {
  for (std::size_t i = 0; i < max; ++i) {
    if (!blocks.add(alloc(size), size)) return i;
  }
  return SIZE_MAX;
}

}  // namespace sp_oom
