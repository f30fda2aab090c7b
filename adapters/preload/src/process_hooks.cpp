// Process-wide hooks of the shim: fork handlers for its own lock, its line of the statistics
// printed at exit, and malloc_trim.
//
// Nothing here is needed before the first allocation: malloc works from the first call ld.so
// makes, long before this library's constructor runs, because every structure the core touches is
// constant-initialised and per-thread heaps are created on demand.
#include <malloc.h>
#include <pthread.h>

#include "options.hpp"
#include "os.hpp"
#include "shim.hpp"
#include "slabpool/detail/locks.hpp"
#include "slabpool/slabpool.h"

namespace slabpool::preload {
namespace {

char* format_decimal(char* out, unsigned long long value) noexcept {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  char* w = out;
  while (n > 0) *w++ = digits[--n];
  *w = '\0';
  return out;
}

// The over-aligned registry's lock takes part in fork() at its rank, with the core's locks.
detail::fork_participant g_fork_party{detail::lock_rank::overaligned,
                                      [](void*) { overaligned_lock_for_fork(); },
                                      [](void*) { overaligned_unlock_after_fork(); },
                                      [](void*) { overaligned_unlock_after_fork(); }, nullptr};

// Runs after the libraries it depends on (libc, libstdc++) were initialised and before the
// program's own constructors. pthread_atfork may allocate; that is fine, malloc already works.
__attribute__((constructor)) void shim_start() {
  detail::fork_participant_add(&g_fork_party);
}

// The core prints SLABPOOL_STATS itself at exit (stats.cpp). The shim adds what only it knows:
// frees of pointers it did not hand out, which it left alone. Written straight to fd 2, since
// stdio may already be shut down when destructors of preloaded libraries run.
__attribute__((destructor)) void shim_stop() {
  detail::options_init();
  const std::size_t ignored = foreign_frees_ignored();
  if (detail::option(SP_OPTION_STATS) == 0 || ignored == 0) return;
  char text[24];
  detail::os::write_error("slabpool: preload: frees of pointers not from slabpool left alone: ");
  detail::os::write_error(format_decimal(text, ignored));
  detail::os::write_error("\n");
}

}  // namespace
}  // namespace slabpool::preload

extern "C" SLABPOOL_SHIM_EXPORT int malloc_trim(size_t /*pad*/) noexcept {
  // glibc returns 1 when memory went back to the OS, 0 otherwise. The pad (bytes to keep at the
  // top of glibc's main heap) has no counterpart here: sp_trim returns everything idle.
  return sp_trim() > 0 ? 1 : 0;
}
