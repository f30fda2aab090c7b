#include "fork.hpp"

#include <pthread.h>

#include "checked.hpp"
#include "heap_lifecycle.hpp"
#include "segment.hpp"
#include "slabpool/detail/locks.hpp"
#include "trim.hpp"

namespace slabpool::detail {
namespace {

// The core's parties to fork(), one per rank (the heap registry's covers the heap and abandoned
// ranks too: it takes every live heap's lock and the abandoned lists' lock after its own). The
// registry in locks.cpp runs them, with the adapters' (pools, the shim), in rank order.
fork_participant g_callbacks_party{lock_rank::trim_callbacks,
                                   [](void*) { trim_callbacks_lock_for_fork(); },
                                   [](void*) { trim_callbacks_unlock_after_fork(); },
                                   [](void*) { trim_callbacks_unlock_after_fork(); }, nullptr};
fork_participant g_trimmer_party{lock_rank::trimmer, [](void*) { trimmer_fork_prepare(); },
                                 [](void*) { trimmer_fork_parent(); },
                                 [](void*) { trimmer_fork_child(); }, nullptr};
fork_participant g_heaps_party{lock_rank::heap_registry,
                               [](void*) { heap_registry_lock_for_fork(); },
                               [](void*) { heap_registry_unlock_after_fork(false); },
                               [](void*) { heap_registry_unlock_after_fork(true); },
                               nullptr,
                               (1u << static_cast<unsigned>(lock_rank::heap)) |
                                   (1u << static_cast<unsigned>(lock_rank::abandoned))};
fork_participant g_quarantine_party{lock_rank::quarantine,
                                    [](void*) { quarantine_lock_for_fork(); },
                                    [](void*) { quarantine_unlock_after_fork(); },
                                    [](void*) { quarantine_unlock_after_fork(); }, nullptr};
fork_participant g_segments_party{lock_rank::segment_pool,
                                  [](void*) { segment_pool_lock_for_fork(); },
                                  [](void*) { segment_pool_unlock_after_fork(); },
                                  [](void*) { segment_pool_unlock_after_fork(); }, nullptr};

pthread_once_t g_once = PTHREAD_ONCE_INIT;

void register_core_parties() {
  fork_participant_add(&g_callbacks_party);
  fork_participant_add(&g_trimmer_party);
  fork_participant_add(&g_heaps_party);
  fork_participant_add(&g_quarantine_party);
  fork_participant_add(&g_segments_party);
}

}  // namespace

void install_fork_handlers() noexcept {
  pthread_once(&g_once, register_core_parties);
}

}  // namespace slabpool::detail
