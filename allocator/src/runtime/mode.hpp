// The allocator's mode: whether checked mode is on, and the two words through which the release
// fast paths send every call of checked mode aside at no cost to themselves. Latched once by the
// process layer, before the first heap or large block exists, and never changed after.
#pragma once

#include <atomic>
#include <cstdint>

namespace slabpool::detail {

struct heap;

// Whether checked mode is on (SLABPOOL_CHECKED=1 or sp_option_set before the first allocation).
extern bool g_checked;
// Set once checked mode has been decided; SP_OPTION_CHECKED is fixed from then on.
extern std::atomic<bool> g_checked_latched;

// The bits of an address free() tests before touching memory: kSegmentMask (no block starts on a
// segment boundary), or 0 in checked mode so that every free reaches the slow path.
extern std::uintptr_t g_free_screen __attribute__((visibility("hidden")));

// The owner every slab gets in checked mode: an address no thread's heap has, so every free by
// the owner misses the fast path too.
extern const char g_checked_owner_tag;
inline heap* checked_owner() noexcept {
  return reinterpret_cast<heap*>(const_cast<char*>(&g_checked_owner_tag));
}
// The owner a slab taken by heap `h` gets.
inline heap* slab_owner_tag(heap* h) noexcept {
  return g_checked ? checked_owner() : h;
}

// Fixes the mode: called once, by the process layer's start-up.
void mode_latch(bool checked) noexcept;

}  // namespace slabpool::detail
