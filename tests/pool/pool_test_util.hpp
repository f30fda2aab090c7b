// Helpers for the pool tests: an instrumented object type and the fake trim clock.
#pragma once

#include <slabpool/slabpool.h>

#include <atomic>
#include <string>

#include "common/fake_clock.hpp"

namespace pool_test {

using sp_test::advance_ms;
using sp_test::fake_clock;

// Counts constructions and destructions process-wide; its string is long enough to live on the
// malloc heap, so a leaked tracked object is also a leak LeakSanitizer reports.
struct tracked {
  static inline std::atomic<long> constructed{0};
  static inline std::atomic<long> destroyed{0};
  static long live() { return constructed.load() - destroyed.load(); }

  tracked() : payload(64, 'x') { ++constructed; }
  tracked(const tracked&) = delete;
  tracked& operator=(const tracked&) = delete;
  ~tracked() { ++destroyed; }

  std::string payload;
  int dirty = 0;                    // set by users, cleared by the reset hook
  std::atomic<bool> in_use{false};  // catches an object handed to two users at once
  long uses = 0;
};

// Deterministic trim passes: no background trimmer, a fake clock.
inline void use_fake_clock() {
  sp_option_set(SP_OPTION_BACKGROUND_TRIM, 0);
  sp_set_clock(fake_clock);
}

}  // namespace pool_test
