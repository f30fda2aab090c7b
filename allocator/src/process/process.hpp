// The process layer: one place for the life of the process and its threads (mimalloc's init.c is
// the model). It owns
//   - start-up, once: the SLABPOOL_* options are read, checked mode is latched, the fork handlers
//     and the core's fork participants are installed, the thread-exit key is created;
//   - each thread's heap: created on its first allocation, handed over at its exit;
//   - exit: the background trimmer is stopped and SLABPOOL_STATS printed.
// Everything below this layer receives what it needs as arguments or reads it from the runtime
// layer; nothing below starts, stops or registers anything process-wide.
#pragma once

#include "heap/heap.hpp"
#include "slabpool/detail/locks.hpp"

namespace slabpool::detail {

// Runs the process start-up once (idempotent, thread-safe, never allocates). Called by the first
// heap, the first large block, the public API calls that read options or trim before any
// allocation, and every fork-participant registration.
void process_start() noexcept;

// Creates the calling thread's heap and installs it in tls_heap (starting the process first when
// needed); nullptr when out of memory.
heap* thread_heap_create() noexcept;

// Whether the calling thread's heap was already handed over at its exit: thread-exit destructors
// that run after ours (in any of their rounds) still allocate, from heap_shared().
bool thread_exited() noexcept;

// The fork registry (fork_registry.cpp): adds a participant without starting the process (the
// start-up registers the core's own participants through it), and the handlers atfork runs.
void fork_registry_insert(fork_participant* participant) noexcept;
void fork_registry_before() noexcept;
void fork_registry_after_in_parent() noexcept;
void fork_registry_after_in_child() noexcept;

// The core's fork participants (fork.cpp), registered by the start-up.
void register_core_fork_participants() noexcept;

}  // namespace slabpool::detail
