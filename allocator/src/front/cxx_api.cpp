// The C++ entry points that throw std::bad_alloc (slabpool.hpp). Apart from the rest of the core
// so the preload shim, which leaves them out, needs nothing of libstdc++'s exception support: a C
// program it is preloaded into should not map and relocate libstdc++ for the allocator's sake
// (issue 12: about 1.3 MiB of resident memory per process).
#include <new>

#include "front.hpp"
#include "slabpool/slabpool.hpp"

using namespace slabpool::detail;

namespace slabpool {
namespace {
void* or_throw(void* p) {
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* malloc(std::size_t size) {
  return or_throw(heap_malloc(size));
}
void* calloc(std::size_t n, std::size_t size) {
  return or_throw(zeroed_malloc(n, size));
}
void* realloc(void* p, std::size_t size) {
  void* q = resize(p, size);
  if (q == nullptr && size != 0) throw std::bad_alloc();
  return q;
}
void* aligned_alloc(std::size_t alignment, std::size_t size) {
  return or_throw(aligned_malloc(alignment, size));
}

}  // namespace slabpool
