// Pointers that reach free/realloc without being inside slabpool's segments.
//
// Where they come from: overaligned blocks (shim.hpp: the core's own-mapping registry); memory
// ld.so handed out with its minimal start-up allocator before it switched to ours (glibc takes care
// never to free those, but a bug elsewhere could); and plain invalid pointers. None of them is
// known to come from glibc's heap: with the shim preloaded, glibc's own malloc is never reached, so
// forwarding to the real free (dlsym(RTLD_NEXT)) would hand glibc a pointer it does not own, which
// aborts at best. Leaking is the only choice that never corrupts memory; SLABPOOL_VERBOSE names the
// first such pointer so the leak can be tracked down.
#include <atomic>
#include <cstring>

#include "shim.hpp"

namespace slabpool::preload {
namespace {

constinit std::atomic<std::size_t> g_ignored{0};

// SLABPOOL_VERBOSE is consulted when first needed, not in a constructor: foreign frees can happen
// before any constructor of ours ran. Starting the process never allocates.
bool verbose() noexcept {
  return detail::verbose_mode();
}

}  // namespace

void free_outside_segments(void* p, const char* operation) noexcept {
  if (overaligned_free(p)) return;
  if (g_ignored.fetch_add(1, std::memory_order_relaxed) == 0 && verbose()) {
    char hex[20];
    detail::format_hex(hex, reinterpret_cast<unsigned long long>(p));
    detail::say(
        {operation, "(", hex, "): not a block slabpool handed out; left alone (reported once)"});
  }
}

void* realloc_outside_segments(void* p, std::size_t size) noexcept {
  const std::size_t usable = overaligned_usable_size(p);
  if (usable == 0) {
    detail::report_fatal("realloc", p, "not a block slabpool handed out (its size is unknown)");
  }
  if (size == 0) {  // glibc: free and return null
    overaligned_free(p);
    return nullptr;
  }
  // realloc promises malloc's alignment only, so the new block is an ordinary one.
  void* q = detail::heap_malloc(size);
  if (q == nullptr) return nullptr;
  std::memcpy(q, p, size < usable ? size : usable);
  overaligned_free(p);
  return q;
}

std::size_t foreign_frees_ignored() noexcept {
  return g_ignored.load(std::memory_order_relaxed);
}

void check_size_hint(const char* operation, const void* p, std::size_t size) noexcept {
  if (p == nullptr) return;
  const std::size_t usable = shim_usable_size(p);
  if (usable != 0 && size > usable) {
    detail::report_fatal(operation, p, "size hint larger than the block (wrong sized free)");
  }
}

}  // namespace slabpool::preload
