// fork() safety: every allocator lock is taken before fork and released in parent and child, so
// the child never inherits a lock held by a thread that does not exist there.
#pragma once

namespace slabpool::detail {

// Registers the pthread_atfork handlers once; called when the first heap is created.
void install_fork_handlers() noexcept;

}  // namespace slabpool::detail
