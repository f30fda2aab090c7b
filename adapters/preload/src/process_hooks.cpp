// Process-wide hooks of the shim: its line of the statistics printed at exit, and malloc_trim.
// (Its blocks beyond the core's alignment live in the core's registry of blocks with a mapping of
// their own, whose lock the core's fork handlers take.)
//
// Nothing here is needed before the first allocation: malloc works from the first call ld.so
// makes, long before this library's constructor runs, because every structure the core touches is
// constant-initialised and per-thread heaps are created on demand.
#include <malloc.h>

#include "shim.hpp"
#include "slabpool/slabpool.h"

namespace slabpool::preload {
namespace {

// The core prints SLABPOOL_STATS itself at exit (process/process.cpp). The shim adds what only it
// knows: frees of pointers it did not hand out, which it left alone. Written straight to fd 2,
// since stdio may already be shut down when destructors of preloaded libraries run.
__attribute__((destructor)) void shim_stop() {
  detail::start();
  const std::size_t ignored = foreign_frees_ignored();
  if (detail::option(SP_OPTION_STATS) == 0 || ignored == 0) return;
  char text[24];
  detail::say({"preload: frees of pointers not from slabpool left alone: ",
               detail::format_decimal(text, ignored)});
}

}  // namespace
}  // namespace slabpool::preload

extern "C" SLABPOOL_SHIM_EXPORT int malloc_trim(size_t /*pad*/) noexcept {
  // glibc returns 1 when memory went back to the OS, 0 otherwise. The pad (bytes to keep at the
  // top of glibc's main heap) has no counterpart here: sp_trim returns everything idle.
  return sp_trim() > 0 ? 1 : 0;
}
