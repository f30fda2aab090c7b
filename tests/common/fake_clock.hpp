// The fake trim clock of the trim and pool tests, installed with sp_set_clock: milliseconds that
// start at 1000 and move only when a test advances them, so decay and pool ageing are
// deterministic.
#pragma once

#include <atomic>

namespace sp_test {

inline std::atomic<unsigned long long> g_fake_now{1000};

inline unsigned long long fake_clock() {
  return g_fake_now.load();
}

inline void advance_ms(unsigned long long ms) {
  g_fake_now += ms;
}

}  // namespace sp_test
