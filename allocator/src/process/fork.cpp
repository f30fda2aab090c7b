// The core's parties to fork(): every lock of the core, in rank order, taken before fork and
// released after it (the heap registry also hands the heaps of threads that do not exist in the
// child over for adoption, and the trimmer starts over in the child).
#include "checked/checked.hpp"
#include "heap/heap_registry.hpp"
#include "process.hpp"
#include "segment/own_mapping.hpp"
#include "segment/segment.hpp"
#include "slabpool/detail/locks.hpp"
#include "trim/trim.hpp"

namespace slabpool::detail {
namespace {

// The core's parties to fork(), one per rank (the heap registry's covers the heap and abandoned
// ranks too: it takes every live heap's lock and the abandoned lists' lock after its own). The
// registry (fork_registry.cpp) runs them, with the adapters' (pools, the shim), in rank order.
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
fork_participant g_own_mappings_party{lock_rank::own_mappings,
                                      [](void*) { own_mapping_lock_for_fork(); },
                                      [](void*) { own_mapping_unlock_after_fork(); },
                                      [](void*) { own_mapping_unlock_after_fork(); }, nullptr};
fork_participant g_segments_party{lock_rank::segment_pool,
                                  [](void*) { segment_pool_lock_for_fork(); },
                                  [](void*) { segment_pool_unlock_after_fork(); },
                                  [](void*) { segment_pool_unlock_after_fork(); }, nullptr};

}  // namespace

void register_core_fork_participants() noexcept {
  fork_registry_insert(&g_callbacks_party);
  fork_registry_insert(&g_trimmer_party);
  fork_registry_insert(&g_heaps_party);
  fork_registry_insert(&g_quarantine_party);
  fork_registry_insert(&g_own_mappings_party);
  fork_registry_insert(&g_segments_party);
}

}  // namespace slabpool::detail
