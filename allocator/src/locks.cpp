// The lock hierarchy's books (which ranks a thread holds) and the fork registry that takes every
// registered lock in rank order around fork(). See slabpool/detail/locks.hpp for the rules.
#include "slabpool/detail/locks.hpp"

#include <pthread.h>

#include <cstdlib>
#include <mutex>

#include "checked.hpp"
#include "heap.hpp"
#include "os.hpp"
#include "spin_lock.hpp"

namespace slabpool::detail {

constinit thread_local std::uint32_t t_held_lock_ranks SLABPOOL_TLS_MODEL = 0;

namespace {

constexpr const char* kRankNames[] = {"(none)",        "pool_registry",  "pool_victim",
                                      "resource_pool", "trim_callbacks", "trimmer",
                                      "heap_registry", "heap",           "abandoned",
                                      "quarantine",    "overaligned",    "segment_pool"};
static_assert(sizeof(kRankNames) / sizeof(kRankNames[0]) ==
              static_cast<std::size_t>(lock_rank::count_));

// The order is asserted in debug builds and in checked mode; release builds only keep the books
// (trim passes read them to know whether they may run callbacks).
bool order_checked() {
#ifdef NDEBUG
  return g_checked;
#else
  return true;
#endif
}

[[noreturn]] void report_order(lock_rank taking, std::uint32_t held) {
  unsigned highest = 31 - static_cast<unsigned>(__builtin_clz(held));
  os::write_error("slabpool: lock order violated: taking '");
  os::write_error(lock_rank_name(taking));
  os::write_error("' while holding '");
  os::write_error(lock_rank_name(static_cast<lock_rank>(highest)));
  os::write_error(
      "' (a thread may only take locks of higher rank than those it holds; see "
      "slabpool/detail/locks.hpp)\n");
  std::abort();
}

// --- the fork registry
// ---------------------------------------------------------------------------- A doubly linked list
// in rank order. Its own lock is outside the hierarchy: registration takes nothing else, and
// before_fork holds it until the handlers after fork are done.
constinit spin_lock g_fork_table;
fork_participant* g_first = nullptr;
fork_participant* g_last = nullptr;
pthread_once_t g_handlers_once = PTHREAD_ONCE_INIT;

void before_fork() {
  g_fork_table.lock();
  for (fork_participant* p = g_first; p != nullptr; p = p->next) p->prepare(p->context);
}
void after_fork_in_parent() {
  for (fork_participant* p = g_last; p != nullptr; p = p->prev) p->parent(p->context);
  g_fork_table.unlock();
}
void after_fork_in_child() {
  for (fork_participant* p = g_last; p != nullptr; p = p->prev) p->child(p->context);
  g_fork_table.unlock();
}
void install_handlers() {
  pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
}

}  // namespace

const char* lock_rank_name(lock_rank rank) noexcept {
  const auto i = static_cast<unsigned>(rank);
  return i < static_cast<unsigned>(lock_rank::count_) ? kRankNames[i] : "(unknown)";
}

void lock_order_violated(lock_rank rank, std::uint32_t held) noexcept {
  if (order_checked()) report_order(rank, held);
}

void fork_participant_add(fork_participant* participant) noexcept {
  pthread_once(&g_handlers_once, install_handlers);
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
