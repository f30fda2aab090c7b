// Blocks above the largest size class. Up to a segment's worth they are runs of units inside
// regular segments (so freeing them needs no syscall and the memory is reused); beyond that each
// gets a mapping of its own.
#include <cerrno>
#include <cstring>

#include "heap.hpp"

namespace slabpool::detail {

void* large_alloc(std::size_t size, std::size_t alignment, bool zero) noexcept {
  if (size > (std::size_t{1} << kAddressBits)) {
    errno = ENOMEM;
    return nullptr;
  }
  const std::size_t units = (size + kUnitSize - 1) >> kUnitShift;
  const std::size_t align_units = alignment > kUnitSize ? alignment >> kUnitShift : 1;
  if (units + align_units <= kUnitsPerSegment) {
    bool zeroed = false;
    slab* s = acquire_span({static_cast<unsigned>(units), static_cast<unsigned>(align_units)}, &zeroed);
    if (s == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
    s->block_size = static_cast<std::uint32_t>(units << kUnitShift);
    s->kind = slab_kind::large;
    if (zero && !zeroed) std::memset(s->area, 0, size);
    return s->area;
  }
  slab* s = acquire_huge(size, alignment);
  if (s == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  return s->area;  // a fresh mapping is zero-filled
}

void large_free(slab* s) noexcept {
  if (s->kind == slab_kind::large) {
    release_span(s);
  } else {
    release_huge(s);
  }
}

std::size_t block_usable_size(const void* p) noexcept {
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
