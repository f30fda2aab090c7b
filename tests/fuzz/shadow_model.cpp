#include "shadow_model.hpp"

#include <cstdio>
#include <cstdlib>

#include "common/pattern.hpp"
#include "slabpool/slabpool.h"

namespace sp_fuzz {

void fail(const char* what, const void* p, std::size_t size) {
  std::fprintf(stderr, "slabpool fuzz: %s (pointer %p, size %zu)\n", what, p, size);
  std::abort();
}

void shadow_model::insert_interval(const block& b) {
  const auto start = reinterpret_cast<std::uintptr_t>(b.p);
  // Even a zero-byte block is a unique address, so it occupies at least one byte.
  const std::uintptr_t end = start + (b.usable > 0 ? b.usable : 1);
  auto next = intervals_.lower_bound(start);
  expect(next == intervals_.end() || next->first >= end, "new block overlaps a later live block",
         b.p, b.usable);
  if (next != intervals_.begin()) {
    expect(std::prev(next)->second <= start, "new block overlaps an earlier live block", b.p,
           b.usable);
  }
  intervals_.emplace_hint(next, start, end);
}

void shadow_model::erase_interval(const block& b) {
  const bool erased = intervals_.erase(reinterpret_cast<std::uintptr_t>(b.p)) == 1;
  expect(erased, "shadow model lost a block", b.p, b.size);
}

void shadow_model::adopt(block& b, std::size_t alignment) {
  expect(b.p != nullptr, "allocation failed below the live-memory bound", nullptr, b.size);
  expect(sp_check::is_aligned(b.p, alignment < 16 ? 16 : alignment), "misaligned block", b.p,
         alignment);
  b.usable = sp_usable_size(b.p);
  expect(b.usable >= b.size, "usable size below the requested size", b.p, b.usable);
  expect(sp_owns(b.p) != 0, "sp_owns denies a live block", b.p, b.size);
  if (b.usable > 0) {
    expect(sp_owns(static_cast<char*>(b.p) + b.usable - 1) != 0,
           "sp_owns denies the last usable byte", b.p, b.usable);
  }
  insert_interval(b);
  b.seed = sp_check::address_seed(b.p, ++counter_);
  b.checked = b.size;
  sp_check::fill_pattern_sparse(b.p, b.size, b.seed);
  live_bytes_ += b.size;
}

void shadow_model::verify(const block& b) const {
  expect(sp_usable_size(b.p) == b.usable, "usable size changed while the block was live", b.p,
         b.usable);
  expect(sp_check::check_pattern_sparse(b.p, b.checked, b.checked, b.seed) == sp_check::kPatternOk,
         "block contents changed while it was live", b.p, b.checked);
}

void shadow_model::release(block& b) {
  verify(b);
  erase_interval(b);
  live_bytes_ -= b.size;
  b = block{};
}

void shadow_model::fill_usable(block& b) {
  b.seed = sp_check::address_seed(b.p, ++counter_);
  b.checked = b.usable;
  sp_check::fill_pattern_sparse(b.p, b.usable, b.seed);
}

}  // namespace sp_fuzz
