// slabpool — a standard allocator over the process-wide allocator, for containers that are not
// pmr (std::vector<T, slabpool::allocator<T>>, std::map, std::basic_string, ...).
#pragma once

#include <cstddef>
#include <limits>
#include <new>
#include <type_traits>

#include "slabpool/slabpool.h"

namespace slabpool {

// Stateless: every slabpool::allocator compares equal to every other, whatever its T, so
// containers can swap, move and splice their memory freely, and memory may be freed from any
// thread.
template <class T>
class allocator {
 public:
  using value_type = T;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  using propagate_on_container_move_assignment = std::true_type;
  using is_always_equal = std::true_type;

  constexpr allocator() noexcept = default;
  // Rebinding: an allocator<U> converts to allocator<T> (the standard allocator requirement).
  template <class U>
  constexpr allocator(const allocator<U>& /*other*/) noexcept {}

  // Returns storage for n objects of T, aligned to alignof(T); throws std::bad_array_new_length (a
  // std::bad_alloc) when n * sizeof(T) overflows, std::bad_alloc when memory runs out.
  [[nodiscard]] T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    void* p;
    if constexpr (alignof(T) <= 16) {  // sp_malloc's guarantee
      p = sp_malloc(n * sizeof(T));
    } else {
      p = sp_aligned_alloc(alignof(T), n * sizeof(T));
    }
    if (p == nullptr) [[unlikely]]
      throw std::bad_alloc();
    return static_cast<T*>(p);
  }

  // Frees storage from allocate(n) (any thread may free it); the size lets checked mode verify it.
  void deallocate(T* p, std::size_t n) noexcept { sp_free_sized(p, n * sizeof(T)); }

  // The largest n allocate() may succeed for.
  constexpr std::size_t max_size() const noexcept {
    return std::numeric_limits<std::size_t>::max() / sizeof(T);
  }
};

// All slabpool allocators are interchangeable.
template <class T, class U>
constexpr bool operator==(const allocator<T>& /*a*/, const allocator<U>& /*b*/) noexcept {
  return true;
}

}  // namespace slabpool
