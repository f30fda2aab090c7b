// slabpool — C++ API. The same operations as the C API (slabpool.h), reporting failure with
// std::bad_alloc instead of a null pointer.
#pragma once

#include <cstddef>

#include "slabpool/slabpool.h"

namespace slabpool {

// Returns at least `size` bytes aligned to 16; throws std::bad_alloc when memory runs out.
SLABPOOL_API void* malloc(std::size_t size);

// Returns n*size zeroed bytes; throws std::bad_alloc on overflow or when memory runs out.
SLABPOOL_API void* calloc(std::size_t n, std::size_t size);

// Resizes p keeping its contents up to min(old, new); throws std::bad_alloc (p stays valid).
SLABPOOL_API void* realloc(void* p, std::size_t size);

// Frees p (any slabpool block, from any thread); free(nullptr) does nothing.
SLABPOOL_API void free(void* p) noexcept;

// Frees p whose requested size was `size` (checked in checked mode).
SLABPOOL_API void free_sized(void* p, std::size_t size) noexcept;

// Returns `size` bytes aligned to `alignment`; throws std::bad_alloc when the alignment is not a
// power of two, exceeds SP_MAX_ALIGNMENT, or memory runs out.
SLABPOOL_API void* aligned_alloc(std::size_t alignment, std::size_t size);

// Bytes usable at p (>= requested); 0 for nullptr.
SLABPOOL_API std::size_t usable_size(const void* p) noexcept;

// True when p points into memory slabpool manages.
SLABPOOL_API bool owns(const void* p) noexcept;

}  // namespace slabpool
