// slabpool::resource: std::pmr over the process-wide allocator. Both fast paths are the core's
// inline ones, so a pmr allocate or deallocate costs about one virtual call more than sp_malloc.
#include <new>

#include "front/front.hpp"
#include "slabpool/pmr.hpp"

namespace slabpool {

// Everything but the common case: sizes above 1 KiB, alignments above 16, refills, failure. A
// member, so the tail call from do_allocate passes its arguments on unchanged.
void* resource::allocate_slow(std::size_t bytes, std::size_t alignment) {
  void* p;
  if (alignment <= detail::kMinAlignment) {
    // Every block is 16-aligned, so smaller alignments need no work at all. A direct size got
    // here because its current slab had nothing staged: straight to the refill.
    p = bytes <= detail::kMaxDirectSize ? detail::alloc_direct_slow(bytes)
                                        : detail::heap_malloc_above_direct(bytes);
  } else {
    p = detail::aligned_malloc(alignment, bytes);
  }
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

// The common case inline: up to 1 KiB at alignment <= 16 with a block staged on the current slab.
// The core's try_pop_direct leaves the refill to allocate_slow: with only tail calls left, the
// function needs no stack frame.
void* resource::do_allocate(std::size_t bytes, std::size_t alignment) {
  if (bytes <= detail::kMaxDirectSize && alignment <= detail::kMinAlignment) [[likely]] {
    if (void* b = detail::try_pop_direct(bytes); b != nullptr) [[likely]]
      return b;
  }
  return allocate_slow(bytes, alignment);
}

// The sized free: the fast path never reads the size (free finds the block's slab from its address
// in O(1), and aligned blocks are ordinary blocks), but checked mode compares it with the size the
// block was allocated with, so a wrong-size deallocate is reported. Every allocate path above
// records `bytes` (heap_malloc and aligned_malloc both pass the request size on; a size of 0 means
// "unknown" to checked mode), so the size pmr gives back is the one checked mode knows. `bytes`
// already sits in the register the slow path takes its size in: the release fast path is unchanged.
void resource::do_deallocate(void* p, std::size_t bytes, std::size_t /*alignment*/) {
  detail::heap_free_sized(p, bytes);
}

bool resource::do_is_equal(const std::pmr::memory_resource& other) const noexcept {
  return this == &other || dynamic_cast<const resource*>(&other) != nullptr;
}

namespace {
// Constant-initialised and never destroyed (the union has no destructor call for its member), so
// the resource stays valid through static destruction: objects destroyed after a plain
// function-local static would otherwise call into a dead object's vtable.
union forever {
  resource r;
  constexpr forever() : r() {}
  ~forever() {}
};
constinit forever g_resource;
}  // namespace

resource* get_resource() noexcept {
  return &g_resource.r;
}

}  // namespace slabpool
