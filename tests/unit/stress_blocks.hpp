// Blocks that carry a checkable pattern across threads, shared by the multi-thread tests.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "slabpool/slabpool.h"
#include "unit_test_util.hpp"

namespace sp_test {

// A live block and the pattern it must still hold when it is freed.
struct tagged_block {
  void* p = nullptr;
  std::size_t size = 0;
  std::uint64_t pattern = 0;  // address_seed(p, per-block seed)
  unsigned tag = 0;           // free for a test's own bookkeeping (e.g. which thread owns it)
};

// Sizes from 16 B to 300 KiB, weighted towards small ones as real programs are.
inline std::size_t random_block_size(rng& r) {
  const std::uint64_t pick = r.next() % 100;
  if (pick < 70) return r.range(16, 256);
  if (pick < 90) return r.range(257, 4096);
  if (pick < 98) return r.range(4097, 64 * kKiB);
  return r.range(64 * kKiB + 1, 300 * kKiB);
}

// Counters every thread updates; the test asserts on them after joining, because gtest assertions
// are not meant to be raced on from many threads at once.
class block_ledger {
 public:
  tagged_block make(std::size_t size, rng& r) {
    tagged_block b;
    b.size = size;
    b.p = sp_malloc(size);
    if (b.p == nullptr) {
      fail("sp_malloc returned null", b);
      return b;
    }
    b.pattern = address_seed(b.p, r.next());
    fill_pattern(b.p, size, b.pattern);
    allocated_.fetch_add(1, std::memory_order_relaxed);
    return b;
  }

  // Checks the pattern (and that usable_size still covers it) and frees the block.
  void release(const tagged_block& b) {
    if (b.p == nullptr) return;
    verify(b);
    sp_free(b.p);
    freed_.fetch_add(1, std::memory_order_relaxed);
  }

  // Checks the pattern, reallocates to `new_size` and re-tags the block at its new address.
  void resize(tagged_block& b, std::size_t new_size, rng& r) {
    verify(b);
    void* q = sp_realloc(b.p, new_size);
    if (q == nullptr) {
      fail("sp_realloc returned null", b);
      return;
    }
    const std::size_t kept = b.size < new_size ? b.size : new_size;
    if (check_pattern(q, kept, b.pattern) != kPatternOk) fail("realloc lost contents", b);
    b.p = q;
    b.size = new_size;
    b.pattern = address_seed(q, r.next());
    fill_pattern(q, new_size, b.pattern);
  }

  std::size_t allocated() const { return allocated_.load(); }
  std::size_t freed() const { return freed_.load(); }
  std::size_t failures() const { return failures_.load(); }
  std::string first_failure() {
    std::lock_guard guard(lock_);
    return first_failure_;
  }

 private:
  void verify(const tagged_block& b) {
    if (sp_usable_size(b.p) < b.size) fail("usable size below the request", b);
    const std::size_t at = check_pattern(b.p, b.size, b.pattern);
    if (at != kPatternOk) {
      std::ostringstream text;
      text << "pattern broken at offset " << at;
      fail(text.str(), b);
    }
  }

  void fail(const std::string& what, const tagged_block& b) {
    if (failures_.fetch_add(1) == 0) {
      std::ostringstream text;
      text << what << " (block " << b.p << ", size " << b.size << ")";
      std::lock_guard guard(lock_);
      first_failure_ = text.str();
    }
  }

  std::atomic<std::size_t> allocated_ = 0;
  std::atomic<std::size_t> freed_ = 0;
  std::atomic<std::size_t> failures_ = 0;
  std::mutex lock_;
  std::string first_failure_;
};

// A mutex-protected mailbox of blocks; the receiver takes everything at once.
class inbox {
 public:
  void put(const tagged_block& b) {
    std::lock_guard guard(lock_);
    items_.push_back(b);
  }
  std::vector<tagged_block> take_all() {
    std::vector<tagged_block> out;
    std::lock_guard guard(lock_);
    out.swap(items_);
    return out;
  }

 private:
  std::mutex lock_;
  std::vector<tagged_block> items_;
};

// Asserts the ledger balanced and clean; call after every thread has joined.
inline void expect_ledger_clean(block_ledger& ledger) {
  EXPECT_EQ(ledger.failures(), 0u) << ledger.first_failure();
  EXPECT_EQ(ledger.allocated(), ledger.freed()) << "blocks were lost between threads";
}

}  // namespace sp_test
