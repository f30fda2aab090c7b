// The public C and C++ entry points: argument checks and errno, then the front door's fast
// paths; and the API of the options, the trim and the test hooks, which start the process first.
#include <cerrno>
#include <new>

#include "front.hpp"
#include "runtime/clock.hpp"
#include "slabpool/slabpool.h"
#include "slabpool/slabpool.hpp"
#include "slabpool/testing.h"
#include "trim/trim.hpp"

using namespace slabpool::detail;

extern "C" {

void* sp_malloc(size_t size) {
  return heap_malloc(size);
}
void* sp_calloc(size_t n, size_t size) {
  return zeroed_malloc(n, size);
}
void* sp_realloc(void* p, size_t size) {
  return resize(p, size);
}
void sp_free(void* p) {
  heap_free(p);
}
void sp_free_sized(void* p, size_t size) {
  heap_free_sized(p, size);
}
void* sp_aligned_alloc(size_t alignment, size_t size) {
  return aligned_malloc(alignment, size);
}
size_t sp_usable_size(const void* p) {
  return p == nullptr ? 0 : block_usable_size(p);
}
int sp_owns(const void* p) {
  return owns(p) ? 1 : 0;
}

size_t sp_trim(void) {
  process_start();
  return trim_pass(true).returned;
}
size_t sp_trim_decay(void) {
  process_start();
  return trim_pass(false).returned;
}

void sp_set_clock(unsigned long long (*now_ms)(void)) {
  g_test_clock.store(now_ms, std::memory_order_relaxed);
}

// The option is an int, not sp_option: a C caller may pass any number, and an out-of-range value
// in a C++ enum parameter would be undefined behaviour before the range check could see it.
long long sp_option_get(int option_index) {
  if (option_index < 0 || option_index >= kOptionCount) return -1;
  options_init();
  return option(static_cast<sp_option>(option_index));
}

int sp_option_set(int option_index, long long value) {
  if (option_index < 0 || option_index >= kOptionCount) return EINVAL;
  const auto which = static_cast<sp_option>(option_index);
  // Read the environment first (not the whole start-up: checked mode must stay settable until
  // the first allocation), so a later first read cannot overwrite this value.
  options_init();
  const option_spec& spec = kOptionSpecs[which];
  if (value < spec.min_value || value > spec.max_value) return EINVAL;
  // Checked mode changes how blocks are laid out: it cannot change once blocks exist.
  if (which == SP_OPTION_CHECKED && g_checked_latched.load(std::memory_order_acquire)) {
    return option(which) == value ? 0 : EINVAL;
  }
  g_option_values[which].store(value, std::memory_order_relaxed);
  return 0;
}

void sp_testing_fail_maps(long count) {
  g_failing_maps.store(count < 0 ? 0 : count, std::memory_order_relaxed);
}

}  // extern "C"

namespace slabpool {

// The throwing C++ entry points (slabpool::malloc, ...) are in cxx_api.cpp.
void free(void* p) noexcept {
  heap_free(p);
}
void free_sized(void* p, std::size_t size) noexcept {
  heap_free_sized(p, size);
}
std::size_t usable_size(const void* p) noexcept {
  return p == nullptr ? 0 : block_usable_size(p);
}
bool owns(const void* p) noexcept {
  return detail::owns(p);
}

}  // namespace slabpool
