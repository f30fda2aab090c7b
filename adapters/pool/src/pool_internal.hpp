// Declarations shared by the pool sources (not installed).
#pragma once

#include <cstdint>

#include "slabpool/pool_core.hpp"

namespace slabpool::detail {

// Objects detached from a pool: the victim generation, or a generation on its way to destruction.
// One slabpool block: header + `capacity` pointers. `destroy` is the pool's object destructor,
// kept here so a batch can be destroyed after its pool is gone.
struct batch {
  batch* next;
  void (*destroy)(void*);
  std::uint32_t count;
  std::uint32_t capacity;
  void* objects[1];
};

// Registers a new pool: assigns its index and ticket; throws std::bad_alloc or length_error.
void registry_add(pool_core* pool, std::uint32_t* index, std::uint64_t* ticket);
// Unregisters a pool: its ticket dies, its index becomes reusable. Never fails.
void registry_remove(pool_core* pool, std::uint32_t index) noexcept;
// Grows this thread's `table` to hold `index` and arms its thread-exit cleanup; throws bad_alloc.
void tls_reserve(tls_table* table, std::uint32_t index);
// Destroys every object of a list of batches and frees them. Never fails.
void destroy_batches(batch* list) noexcept;
// An empty batch with room for `capacity` objects (its destroy function is set when a pool fills
// it); nullptr when memory runs out. Never call it while holding a pool lock (it may run a trim
// pass).
batch* new_batch(std::uint32_t capacity) noexcept;

}  // namespace slabpool::detail
