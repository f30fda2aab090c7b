// A persistent second thread that checks and frees blocks handed to it, so every fuzz input can
// exercise cross-thread frees (the remote free lists) without paying for a thread spawn per block.
#pragma once

#include <cstddef>

#include "shadow_model.hpp"

namespace sp_fuzz {

// Queues `b` (already removed from the shadow model) for the worker, which checks its pattern and
// frees it, with sp_free_sized when `sized`.
void hand_off(const block& b, bool sized);

// Waits until the worker has freed everything queued so far: an input ends with nothing in flight,
// so the next input starts from a known state and the live-memory bound holds.
void drain_hand_offs();

}  // namespace sp_fuzz
