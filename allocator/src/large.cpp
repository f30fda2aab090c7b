// Blocks above the largest size class. Up to a segment's worth they are runs of units inside
// regular segments (so freeing them needs no syscall and the memory is reused); beyond that each
// gets a mapping of its own.
#include <cerrno>
#include <cstring>

#include "checked.hpp"
#include "clock.hpp"
#include "fork.hpp"
#include "heap.hpp"
#include "heap_lifecycle.hpp"
#include "trim.hpp"

namespace slabpool::detail {

void* large_alloc(std::size_t size, std::size_t alignment, bool zero) noexcept {
  trim_on_slow_path();
  checked_mode_latch();
  install_fork_handlers();
  if (g_checked) [[unlikely]] {
    if (size > (std::size_t{1} << kAddressBits)) {
      errno = ENOMEM;
      return nullptr;
    }
    void* p = large_alloc_unchecked(size + kCheckedTrailer, alignment, zero);
    if (p != nullptr) checked_large_init(slab_of(p), p, size);
    return p;
  }
  return large_alloc_unchecked(size, alignment, zero);
}

namespace {

// One attempt; nullptr (errno untouched) when the memory cannot be had.
void* large_alloc_once(std::size_t size, std::size_t alignment, bool zero) noexcept {
  if (size > (std::size_t{1} << kAddressBits)) {
    errno = ENOMEM;
    return nullptr;
  }
  const std::size_t units = (size + kUnitSize - 1) >> kUnitShift;
  const std::size_t align_units = alignment > kUnitSize ? alignment >> kUnitShift : 1;
  if (units + align_units <= kUnitsPerSegment) {
    bool zeroed = false;
    slab* s = acquire_span_reclaiming(
        {static_cast<unsigned>(units), static_cast<unsigned>(align_units)}, &zeroed);
    if (s == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
    s->block_size = static_cast<std::uint32_t>(units << kUnitShift);
    s->kind = slab_kind::large;
    segment_pool_note_large(s->block_size, true);
    if constexpr (kAsan) asan_unpoison(s->area, s->block_size);
    if (zero && !zeroed) std::memset(s->area, 0, size);
    return s->area;
  }
  bool zeroed = false;
  slab* s = acquire_huge(size, alignment, &zeroed);
  if (s == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  segment_pool_note_large(segment_of(s->area)->mapped_size, true);
  if constexpr (kAsan) {
    const segment* seg = segment_of(s->area);
    asan_unpoison(s->area, seg->mapped_size - static_cast<std::size_t>(
                                                  s->area - reinterpret_cast<const char*>(seg)));
  }
  if (zero && !zeroed) std::memset(s->area, 0, size);
  return s->area;
}

}  // namespace

void* large_alloc_unchecked(std::size_t size, std::size_t alignment, bool zero) noexcept {
  if (size > (std::size_t{1} << kAddressBits)) {
    errno = ENOMEM;
    return nullptr;
  }
  const int saved_errno = errno;
  if (void* p = large_alloc_once(size, alignment, zero)) return p;
  // Out of memory: give everything idle back (empty segments and cached huge blocks free address
  // space too) and try once more.
  trim_pass(true);
  if (void* p = large_alloc_once(size, alignment, zero)) {
    errno = saved_errno;  // a success leaves errno as it was
    return p;
  }
  errno = ENOMEM;
  return nullptr;
}

void large_free(slab* s) noexcept {
  trim_on_slow_path();
  if (s->kind == slab_kind::large) {
    segment_pool_note_large(s->block_size, false);
    if constexpr (kAsan) asan_poison(s->area, s->block_size);
    release_span(s, trim_clock_ms());
  } else {
    segment_pool_note_large(segment_of(s->area)->mapped_size, false);
    release_huge(s);
  }
}

std::size_t block_usable_size(const void* p) noexcept {
  if (g_checked) [[unlikely]]
    return checked_usable_size(p);
  const slab* s = slab_of(p);
  switch (s->kind) {
    case slab_kind::small:
      return s->block_size;
    case slab_kind::large:
      return s->block_size - static_cast<std::size_t>(static_cast<const char*>(p) - s->area);
    case slab_kind::huge: {
      const segment* seg = segment_of(p);
      return seg->mapped_size - static_cast<std::size_t>(static_cast<const char*>(p) -
                                                         reinterpret_cast<const char*>(seg));
    }
    case slab_kind::unused:
      break;
  }
  return 0;
}

}  // namespace slabpool::detail
