// A lock for short critical sections on slow paths, constexpr-constructible so it can live in
// constant-initialised objects (the empty heap) and never allocates.
#pragma once

#include <atomic>

#include "platform/platform.hpp"

namespace slabpool::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

class spin_lock {
 public:
  constexpr spin_lock() = default;
  void lock() noexcept {
    for (unsigned spins = 0; locked_.exchange(true, std::memory_order_acquire); ++spins) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins > 64)
          os::yield();  // the holder may be preempted: stop burning its core
        else
          cpu_relax();
      }
    }
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_ = false;
};

}  // namespace slabpool::detail
