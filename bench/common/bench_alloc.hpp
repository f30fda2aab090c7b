// The allocation calls the workloads and malloc micros make. By default they are the C library's
// malloc/free, so the same binary measures whichever allocator LD_PRELOAD puts in front of glibc.
// Built with SLABPOOL_BENCH_LINKED, they call slabpool's C API directly: that variant measures
// slabpool before (or besides) the preload shim, and linked_new.cpp routes operator new there too.
#pragma once

#include <cstddef>
#include <cstdlib>

#if defined(SLABPOOL_BENCH_LINKED)
#include "slabpool/slabpool.h"
#endif

namespace bench {

#if defined(SLABPOOL_BENCH_LINKED)
inline constexpr const char* kAllocApi = "slabpool-linked";
inline void* mem_alloc(std::size_t n) {
  return sp_malloc(n);
}
inline void mem_free(void* p) {
  sp_free(p);
}
inline void mem_free_sized(void* p, std::size_t n) {
  sp_free_sized(p, n);
}
#else
inline constexpr const char* kAllocApi = "malloc";
inline void* mem_alloc(std::size_t n) {
  return std::malloc(n);
}
inline void mem_free(void* p) {
  std::free(p);
}
// glibc 2.36 has no free_sized; the size is simply dropped so every allocator sees plain free().
inline void mem_free_sized(void* p, std::size_t) {
  std::free(p);
}
#endif

}  // namespace bench
