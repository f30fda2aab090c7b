#include "fork.hpp"

#include <pthread.h>

#include "heap_lifecycle.hpp"
#include "segment.hpp"
#include "trim.hpp"

namespace slabpool::detail {
namespace {

// Lock order matches the rest of the allocator: trimmer -> registry -> heaps -> abandoned ->
// segment pool.
void before_fork() {
  trimmer_fork_prepare();
  heap_registry_lock_for_fork();
  segment_pool_lock_for_fork();
}

void after_fork_in_parent() {
  segment_pool_unlock_after_fork();
  heap_registry_unlock_after_fork(false);
  trimmer_fork_parent();
}

void after_fork_in_child() {
  segment_pool_unlock_after_fork();
  heap_registry_unlock_after_fork(true);
  trimmer_fork_child();
}

}  // namespace

void install_fork_handlers() noexcept {
  pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
}

}  // namespace slabpool::detail
