// fork() safety: every allocator lock is taken before fork and released in parent and child, so
// the child never inherits a lock held by a thread that does not exist there. The locks take part
// through the fork registry (slabpool/detail/locks.hpp), in rank order.
#pragma once

namespace slabpool::detail {

// Registers the core's fork participants once; called before the first heap or large block.
void install_fork_handlers() noexcept;

}  // namespace slabpool::detail
