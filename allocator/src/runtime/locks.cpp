// The lock hierarchy's books: which ranks a thread holds, and the report when the order is broken.
// See slabpool/detail/locks.hpp for the rules (the fork registry is process/fork_registry.cpp).
#include "slabpool/detail/locks.hpp"

#include "base/attributes.hpp"
#include "mode.hpp"
#include "report.hpp"

namespace slabpool::detail {

constinit thread_local std::uint32_t t_held_lock_ranks SLABPOOL_TLS_MODEL = 0;

namespace {

constexpr const char* kRankNames[] = {"(none)",        "pool_registry",  "pool_victim",
                                      "resource_pool", "trim_callbacks", "trimmer",
                                      "heap_registry", "heap",           "abandoned",
                                      "quarantine",    "own_mappings",   "segment_pool"};
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
  fatal({"lock order violated: taking '", lock_rank_name(taking), "' while holding '",
         lock_rank_name(static_cast<lock_rank>(highest)),
         "' (a thread may only take locks of higher rank than those it holds; see "
         "slabpool/detail/locks.hpp)"});
}

}  // namespace

const char* lock_rank_name(lock_rank rank) noexcept {
  const auto i = static_cast<unsigned>(rank);
  return i < static_cast<unsigned>(lock_rank::count_) ? kRankNames[i] : "(unknown)";
}

void lock_order_violated(lock_rank rank, std::uint32_t held) noexcept {
  if (order_checked()) report_order(rank, held);
}

}  // namespace slabpool::detail
