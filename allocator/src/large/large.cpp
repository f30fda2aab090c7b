#include "large.hpp"

#include <cstring>

#include "heap/heap_registry.hpp"
#include "runtime/clock.hpp"
#include "segment/segment.hpp"

namespace slabpool::detail {

void* large_alloc_once(std::size_t size, std::size_t alignment, bool zero) noexcept {
  if (size > (std::size_t{1} << kAddressBits)) return nullptr;
  const std::size_t units = (size + kUnitSize - 1) >> kUnitShift;
  const std::size_t align_units = alignment > kUnitSize ? alignment >> kUnitShift : 1;
  if (units + align_units <= kUnitsPerSegment) {
    bool zeroed = false;
    slab* s = acquire_span_reclaiming(
        {static_cast<unsigned>(units), static_cast<unsigned>(align_units)}, &zeroed);
    if (s == nullptr) return nullptr;
    s->block_size = static_cast<std::uint32_t>(units << kUnitShift);
    s->kind = slab_kind::large;
    segment_pool_note_large(s->block_size, true);
    if constexpr (kAsan) asan_unpoison(s->area, s->block_size);
    if (zero && !zeroed) std::memset(s->area, 0, size);
    return s->area;
  }
  std::size_t dirty = 0;
  slab* s = acquire_huge(size, alignment, &dirty);
  if (s == nullptr) return nullptr;
  segment_pool_note_large(segment_of(s->area)->mapped_size, true);
  if constexpr (kAsan) {
    const segment* seg = segment_of(s->area);
    asan_unpoison(s->area, seg->mapped_size - static_cast<std::size_t>(
                                                  s->area - reinterpret_cast<const char*>(seg)));
  }
  // Only the part that was in use before needs zeroing: the rest is fresh from the OS.
  if (zero && dirty != 0) std::memset(s->area, 0, dirty < size ? dirty : size);
  return s->area;
}

namespace {

// A large block grows over the free units right after it: no copy, and the old block does not
// stay resident beside the new one (issue 12: sqlite3's sorter doubles its buffer from 256 KiB by
// realloc; each copy left the last size cached, 3.75 MiB in all, while the next was faulted in).
void* grow_large_in_place(slab* s, void* p, std::size_t size) noexcept {
  const std::size_t offset = static_cast<std::size_t>(static_cast<char*>(p) - s->area);
  const std::size_t units = (offset + size + kUnitSize - 1) >> kUnitShift;
  if (!grow_span(s, static_cast<unsigned>(units))) return nullptr;
  segment_pool_note_large(s->block_size, false);
  s->block_size = static_cast<std::uint32_t>(units << kUnitShift);
  segment_pool_note_large(s->block_size, true);
  if constexpr (kAsan) asan_unpoison(s->area, s->block_size);
  return p;
}

}  // namespace

void* large_resize(void* p, std::size_t size) noexcept {
  slab* s = slab_of(p);
  if (s->kind == slab_kind::large) {
    return size <= kMaxSegmentLargeSize ? grow_large_in_place(s, p, size) : nullptr;
  }
  if (s->kind != slab_kind::huge || p != s->area || size <= kMaxSegmentLargeSize) return nullptr;
  const std::size_t before = segment_of(s->area)->mapped_size;
  slab* resized = resize_huge(s, size);
  if (resized == nullptr) return nullptr;
  const segment* seg = segment_of(resized->area);
  segment_pool_note_large(before, false);
  segment_pool_note_large(seg->mapped_size, true);
  if constexpr (kAsan) {
    asan_unpoison(resized->area,
                  seg->mapped_size -
                      static_cast<std::size_t>(resized->area - reinterpret_cast<const char*>(seg)));
  }
  return resized->area;
}

void large_free(slab* s) noexcept {
  if (s->kind == slab_kind::large) {
    segment_pool_note_large(s->block_size, false);
    if constexpr (kAsan) asan_poison(s->area, s->block_size);
    release_span(s, trim_clock_ms());
  } else {
    segment_pool_note_large(segment_of(s->area)->mapped_size, false);
    release_huge(s, trim_clock_ms());
  }
}

std::size_t large_usable_size(const slab* s, const void* p) noexcept {
  if (s->kind == slab_kind::large)
    return s->block_size - static_cast<std::size_t>(static_cast<const char*>(p) - s->area);
  const segment* seg = segment_of(p);
  return seg->mapped_size -
         static_cast<std::size_t>(static_cast<const char*>(p) - reinterpret_cast<const char*>(seg));
}

}  // namespace slabpool::detail
