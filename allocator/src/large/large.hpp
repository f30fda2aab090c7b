// The large layer: blocks above the largest size class. Up to a segment's worth they are runs of
// units inside regular segments (freeing them needs no syscall and the memory is reused); beyond
// that each gets a mapping of its own (a huge block), which the segment pool caches for a while.
#pragma once

#include <cstddef>

#include "slab/slab.hpp"

namespace slabpool::detail {

// `size` bytes at `alignment` (a power of two up to kMaxAlignment), zeroed when `zero`. One
// attempt: nullptr (errno untouched) when the memory cannot be had; the caller decides whether to
// trim and retry (front/slow_path.cpp).
void* large_alloc_once(std::size_t size, std::size_t alignment, bool zero) noexcept;

// Resizes p, a block above the largest size class, to `size` bytes (also above it) without
// copying: a large block grows over the free units after it in its segment; a huge block that
// stays huge is moved or cut by the kernel (see resize_huge). Returns the block's address, or
// nullptr when neither applies or no memory could be had (p is untouched; the caller copies).
void* large_resize(void* p, std::size_t size) noexcept;

// Frees the large or huge block whose span is `s`.
void large_free(slab* s) noexcept;

// Bytes usable at p, a live large or huge block whose span is `s`.
std::size_t large_usable_size(const slab* s, const void* p) noexcept;

}  // namespace slabpool::detail
