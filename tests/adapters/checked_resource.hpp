// Test helpers: a memory resource that checks every block another resource hands out, and a
// resident-memory probe.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <map>
#include <memory_resource>

#include "common/proc_memory.hpp"

namespace slabpool_test {

// Forwards to `upstream` and fails the running test when a block is misaligned, overlaps a live
// block, is returned with a size or alignment other than the one it was allocated with, or is still
// live when the checker dies. Every byte of a new block is written, so unwritable memory crashes.
class checked_resource final : public std::pmr::memory_resource {
 public:
  explicit checked_resource(std::pmr::memory_resource* upstream) : upstream_(upstream) {}
  checked_resource(const checked_resource&) = delete;
  checked_resource& operator=(const checked_resource&) = delete;
  ~checked_resource() override { EXPECT_EQ(live_.size(), 0u) << "blocks leaked by the container"; }

  std::size_t allocations() const { return allocations_; }
  std::size_t live() const { return live_.size(); }

 private:
  struct block {
    std::size_t bytes;
    std::size_t alignment;
  };

  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    void* p = upstream_->allocate(bytes, alignment);
    const auto at = reinterpret_cast<std::uintptr_t>(p);
    EXPECT_EQ(at % alignment, 0u) << bytes << " bytes at alignment " << alignment;
    const std::size_t span = bytes == 0 ? 1 : bytes;
    auto next = live_.lower_bound(at);
    if (next != live_.end()) {
      EXPECT_GE(next->first, at + span) << "overlaps the next live block";
    }
    if (next != live_.begin()) {
      auto prev = std::prev(next);
      EXPECT_LE(prev->first + std::max<std::size_t>(prev->second.bytes, 1), at)
          << "overlaps the previous live block";
    }
    std::memset(p, 0xA5, bytes);
    live_[at] = block{bytes, alignment};
    ++allocations_;
    return p;
  }

  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    auto it = live_.find(reinterpret_cast<std::uintptr_t>(p));
    if (it == live_.end()) {
      ADD_FAILURE() << "deallocate of a block that is not live";
      return;
    }
    EXPECT_EQ(it->second.bytes, bytes);
    EXPECT_EQ(it->second.alignment, alignment);
    live_.erase(it);
    upstream_->deallocate(p, bytes, alignment);
  }

  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::pmr::memory_resource* upstream_;
  std::map<std::uintptr_t, block> live_;  // on the default heap, not on the resource under test
  std::size_t allocations_ = 0;
};

// Resident set size of this process in bytes (/proc/self/statm); 0 when unreadable.
using sp_test::resident_bytes;

}  // namespace slabpool_test
