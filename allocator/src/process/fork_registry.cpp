// The fork registry: every registered lock is taken in rank order before fork() and released
// after it, in parent and child (slabpool/detail/locks.hpp states the rules). The atfork handlers
// are installed by the process start-up (process.cpp), which every registration goes through.
#include <mutex>

#include "base/spin_lock.hpp"
#include "process.hpp"
#include "slabpool/detail/locks.hpp"

namespace slabpool::detail {
namespace {

// A doubly linked list in rank order. Its own lock is outside the hierarchy: registration takes
// nothing else, and before_fork holds it until the handlers after fork are done.
constinit spin_lock g_fork_table;
fork_participant* g_first = nullptr;
fork_participant* g_last = nullptr;

}  // namespace

void fork_registry_before() noexcept {
  g_fork_table.lock();
  for (fork_participant* p = g_first; p != nullptr; p = p->next) p->prepare(p->context);
}
void fork_registry_after_in_parent() noexcept {
  for (fork_participant* p = g_last; p != nullptr; p = p->prev) p->parent(p->context);
  g_fork_table.unlock();
}
void fork_registry_after_in_child() noexcept {
  for (fork_participant* p = g_last; p != nullptr; p = p->prev) p->child(p->context);
  g_fork_table.unlock();
}

void fork_participant_add(fork_participant* participant) noexcept {
  process_start();  // installs the handlers that run the registry
  fork_registry_insert(participant);
}

void fork_registry_insert(fork_participant* participant) noexcept {
  std::lock_guard guard(g_fork_table);
  // After every participant of the same or a lower rank: equal ranks keep registration order.
  fork_participant* after = g_last;
  while (after != nullptr && after->rank > participant->rank) after = after->prev;
  participant->prev = after;
  participant->next = after != nullptr ? after->next : g_first;
  (participant->next != nullptr ? participant->next->prev : g_last) = participant;
  (after != nullptr ? after->next : g_first) = participant;
}

std::uint32_t fork_covered_ranks() noexcept {
  std::lock_guard guard(g_fork_table);
  std::uint32_t covered = 0;
  for (const fork_participant* p = g_first; p != nullptr; p = p->next)
    covered |= (std::uint32_t{1} << static_cast<unsigned>(p->rank)) | p->also_takes;
  return covered;
}

void fork_participant_remove(fork_participant* participant) noexcept {
  std::lock_guard guard(g_fork_table);
  (participant->prev != nullptr ? participant->prev->next : g_first) = participant->next;
  (participant->next != nullptr ? participant->next->prev : g_last) = participant->prev;
  participant->next = participant->prev = nullptr;
}

}  // namespace slabpool::detail
