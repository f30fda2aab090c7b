#include "process.hpp"

#include "heap/heap_registry.hpp"
#include "platform/platform.hpp"
#include "runtime/mode.hpp"
#include "runtime/options.hpp"
#include "slabpool/slabpool.h"
#include "trim/trim.hpp"

namespace slabpool::detail {
namespace {

constinit once_flag g_start_once;
constinit exit_key g_thread_exit_key;
constinit thread_local bool t_exited SLABPOOL_TLS_MODEL = false;

// Runs at thread exit, after the thread's C++ thread_local destructors. Later destructors that
// allocate are served by the shared heap from then on (thread_exited()).
void on_thread_exit(void* value) {
  auto* h = static_cast<heap*>(value);
  if (h != nullptr && h == tls_heap) {
    t_exited = true;
    tls_heap = &g_empty_heap;
    heap_abandon(h);
  }
}

void start() {
  // The options first: everything after reads them. Reading never allocates, and a bad value is
  // reported once, here.
  options_init();
  // Checked mode changes how blocks are laid out, so it is fixed before the first block exists.
  mode_latch(option(SP_OPTION_CHECKED) != 0);
  os::at_fork(fork_registry_before, fork_registry_after_in_parent, fork_registry_after_in_child);
  register_core_fork_participants();
  os::exit_key_create(g_thread_exit_key, on_thread_exit);
}

// Process exit (normal: exit() or return from main): stop the trimmer so it never runs while exit
// tears down, then print SLABPOOL_STATS. A destructor of this library, so every program that
// allocates has it (a static link keeps this file: thread_heap_create lives here).
__attribute__((destructor)) void process_stop() {
  trimmer_stop();
  const std::int64_t mode = option(SP_OPTION_STATS);
  if (mode != 0) sp_stats_print(2, mode == 2 ? 1 : 0);
}

}  // namespace

void process_start() noexcept {
  os::run_once(g_start_once, start);
}

heap* thread_heap_create() noexcept {
  process_start();
  heap* h = heap_create();
  if (h == nullptr) return nullptr;
  tls_heap = h;
  os::exit_key_set(g_thread_exit_key, h);
  return h;
}

bool thread_exited() noexcept {
  return t_exited;
}

}  // namespace slabpool::detail
