// The process-wide side of resource_pool: the list of live pools, the one sp_on_trim hook that
// runs their housekeeping after each trim pass, the "resource_pools" section of slabpool's stats
// output, and the error category.
//
// The registry lock has the pools' rank (resource_pool) and is never held together with a pool's
// lock, nor while a pool's hooks run: a housekeeping pass pins one pool (registry_refs), drops the
// lock, works, then takes the lock again to move on. Unregistering waits until no pass pins it.
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "front/front.hpp"
#include "slabpool/resource_pool_core.hpp"
#include "slabpool/slabpool.h"

namespace slabpool::detail {
namespace {

constinit ranked<std::mutex> g_lock{lock_rank::resource_pool};
std::condition_variable g_unpinned;  // signalled (under g_lock's bare mutex) when a pin drops
rp_core* g_pools = nullptr;
std::once_flag g_once;

void registry_child(void*) {
  // The pass that pinned a pool ran on a thread the child does not have.
  for (rp_core* p = g_pools; p != nullptr; p = p->registry_next) p->registry_refs = 0;
  g_lock.raw().unlock();
}

constinit fork_participant g_fork{lock_rank::resource_pool, [](void*) { g_lock.raw().lock(); },
                                  [](void*) { g_lock.raw().unlock(); }, registry_child, nullptr};

// Runs `fn` on every pool with no lock held while it runs; returns whether any returned true.
template <class F>
bool for_each_pool(F fn) {
  bool any = false;
  std::unique_lock guard(g_lock);
  rp_core* p = g_pools;
  if (p != nullptr) ++p->registry_refs;
  while (p != nullptr) {
    guard.unlock();
    any = fn(p) || any;
    guard.lock();
    rp_core* next = p->registry_next;  // still linked: removal waits for the pin to drop
    if (next != nullptr) ++next->registry_refs;
    if (--p->registry_refs == 0) g_unpinned.notify_all();
    p = next;
  }
  return any;
}

int trim_hook(void*) {
  return for_each_pool([](rp_core* p) { return p->housekeep(); }) ? 1 : 0;
}

// JSON string contents: names are the user's, so quotes and control characters are escaped.
void json_escaped(char* out, std::size_t size, const char* s) {
  std::size_t n = 0;
  for (; *s != '\0' && n + 7 < size; ++s) {
    const auto c = static_cast<unsigned char>(*s);
    if (c == '"' || c == '\\') {
      out[n++] = '\\';
      out[n++] = static_cast<char>(c);
    } else if (c < 0x20) {
      n += static_cast<std::size_t>(std::snprintf(out + n, size - n, "\\u%04x", c));
    } else {
      out[n++] = static_cast<char>(c);
    }
  }
  out[n] = '\0';
}

std::size_t write_pool(char* buffer, std::size_t size, int json, const rp_core* p) {
  const resource_pool_stats s = p->stats();
  if (!json)
    return static_cast<std::size_t>(std::snprintf(
        buffer, size,
        "  resource_pool %s: open %zu/%zu, in use %zu, idle %zu, waiting %zu; waits %llu "
        "(%.3f ms total, %.3f ms max), timeouts %llu; created %llu, failed %llu; destroyed: "
        "idle %llu, lifetime %llu, broken %llu, validation %llu, surplus %llu, closed %llu; "
        "leaks %llu\n",
        p->name(), s.open, s.max_open, s.in_use, s.idle, s.waiting,
        static_cast<unsigned long long>(s.waits), s.wait_time.count() / 1e6,
        s.max_wait.count() / 1e6, static_cast<unsigned long long>(s.timeouts),
        static_cast<unsigned long long>(s.created),
        static_cast<unsigned long long>(s.create_failures),
        static_cast<unsigned long long>(s.destroyed_idle),
        static_cast<unsigned long long>(s.destroyed_lifetime),
        static_cast<unsigned long long>(s.destroyed_broken),
        static_cast<unsigned long long>(s.destroyed_validation),
        static_cast<unsigned long long>(s.destroyed_surplus),
        static_cast<unsigned long long>(s.destroyed_closed),
        static_cast<unsigned long long>(s.leaks_reported)));
  char name[sizeof("x") * 48 * 6];
  json_escaped(name, sizeof(name), p->name());
  return static_cast<std::size_t>(std::snprintf(
      buffer, size,
      "{\"name\":\"%s\",\"max_open\":%zu,\"open\":%zu,\"in_use\":%zu,\"idle\":%zu,"
      "\"waiting\":%zu,\"waits\":%llu,\"wait_ns\":%lld,\"max_wait_ns\":%lld,\"timeouts\":%llu,"
      "\"created\":%llu,\"create_failures\":%llu,\"destroyed\":{\"idle\":%llu,\"lifetime\":%llu,"
      "\"broken\":%llu,\"validation\":%llu,\"surplus\":%llu,\"closed\":%llu},"
      "\"validations\":%llu,\"keepalives\":%llu,\"leaks_reported\":%llu,"
      "\"abandoned_at_fork\":%llu}",
      name, s.max_open, s.open, s.in_use, s.idle, s.waiting,
      static_cast<unsigned long long>(s.waits), static_cast<long long>(s.wait_time.count()),
      static_cast<long long>(s.max_wait.count()), static_cast<unsigned long long>(s.timeouts),
      static_cast<unsigned long long>(s.created),
      static_cast<unsigned long long>(s.create_failures),
      static_cast<unsigned long long>(s.destroyed_idle),
      static_cast<unsigned long long>(s.destroyed_lifetime),
      static_cast<unsigned long long>(s.destroyed_broken),
      static_cast<unsigned long long>(s.destroyed_validation),
      static_cast<unsigned long long>(s.destroyed_surplus),
      static_cast<unsigned long long>(s.destroyed_closed),
      static_cast<unsigned long long>(s.validations), static_cast<unsigned long long>(s.keepalives),
      static_cast<unsigned long long>(s.leaks_reported),
      static_cast<unsigned long long>(s.abandoned_at_fork)));
}

// The stats section: a JSON array of pools, or one text line per pool. snprintf semantics.
size_t stats_section(char* buffer, size_t size, int json, void*) {
  std::size_t length = 0;
  auto room = [&] { return length < size ? size - length : 0; };
  auto at = [&] { return length < size ? buffer + length : nullptr; };
  if (json) length += static_cast<std::size_t>(std::snprintf(at(), room(), "["));
  bool first = true;
  // Reading a pool's stats calls no hook, so the registry lock may stay held.
  std::lock_guard guard(g_lock);
  for (const rp_core* p = g_pools; p != nullptr; p = p->registry_next) {
    if (json && !first) length += static_cast<std::size_t>(std::snprintf(at(), room(), ","));
    length += write_pool(at(), room(), json, p);
    first = false;
  }
  if (json) length += static_cast<std::size_t>(std::snprintf(at(), room(), "]"));
  return length;
}

void hook_once() {
  fork_participant_add(&g_fork);
  // When sp_on_trim's table is full, pools still work; only housekeep() then runs their
  // housekeeping (documented in resource_pool.hpp).
  sp_on_trim(trim_hook, nullptr);
  sp_stats_add_section("resource_pools", stats_section, nullptr);
}

}  // namespace

void rp_registry_add(rp_core* pool) noexcept {
  std::call_once(g_once, hook_once);
  std::lock_guard guard(g_lock);
  pool->registry_next = g_pools;
  pool->registry_prev = nullptr;
  if (g_pools != nullptr) g_pools->registry_prev = pool;
  g_pools = pool;
}

void rp_registry_remove(rp_core* pool) noexcept {
  std::unique_lock guard(g_lock);
  while (pool->registry_refs != 0) {
    std::unique_lock raw(g_lock.raw(), std::adopt_lock);
    g_unpinned.wait(raw);
    raw.release();
  }
  if (pool->registry_prev != nullptr)
    pool->registry_prev->registry_next = pool->registry_next;
  else
    g_pools = pool->registry_next;
  if (pool->registry_next != nullptr) pool->registry_next->registry_prev = pool->registry_prev;
}

}  // namespace slabpool::detail

namespace slabpool {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "slabpool.resource_pool"; }
  std::string message(int code) const override {
    switch (static_cast<resource_errc>(code)) {
      case resource_errc::timeout:
        return "timed out waiting for a pooled object";
      case resource_errc::closed:
        return "the pool is closed";
      case resource_errc::create_failed:
        return "the factory could not create an object";
    }
    return "unknown resource_pool error";
  }
};

}  // namespace

const std::error_category& resource_pool_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace slabpool

namespace slabpool::detail {

void rp_print_leak(const resource_leak& leak) noexcept {
  char line[512];
  const int n =
      std::snprintf(line, sizeof(line),
                    "slabpool: resource_pool '%s': a lease has been held for %.3f s, "
                    "acquired at %s:%u (%s)\n",
                    leak.pool_name, leak.held.count() / 1e9, leak.file != nullptr ? leak.file : "?",
                    leak.line, leak.function != nullptr ? leak.function : "?");
  if (n > 0)
    std::fwrite(line, 1, static_cast<std::size_t>(n) < sizeof(line) ? n : sizeof(line) - 1, stderr);
}

void rp_fatal(const char* message) noexcept {
  fatal({message});
}

}  // namespace slabpool::detail
