#include "mode.hpp"

#include "base/geometry.hpp"

namespace slabpool::detail {

bool g_checked = false;
std::atomic<bool> g_checked_latched = false;
constinit std::uintptr_t g_free_screen = kSegmentMask;
constinit const char g_checked_owner_tag = 0;

void mode_latch(bool checked) noexcept {
  g_checked = checked;
  if (checked) __atomic_store_n(&g_free_screen, 0, __ATOMIC_RELAXED);
  g_checked_latched.store(true, std::memory_order_release);
}

}  // namespace slabpool::detail
