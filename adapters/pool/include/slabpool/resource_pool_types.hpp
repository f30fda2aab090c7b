// slabpool — what resource_pool<T> reports: its errors, its counters, a leak report.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#if __has_include(<source_location>)
#include <source_location>
#endif

#include "slabpool/export.h"

namespace slabpool {

// Why an acquire failed (the code() of a resource_pool_error).
enum class resource_errc {
  timeout = 1,    // no object became available before the deadline (resource_pool_timeout)
  closed,         // the pool was closed before or while waiting (resource_pool_closed)
  create_failed,  // the factory reported failure by returning an empty std::optional
};

}  // namespace slabpool

template <>
struct std::is_error_code_enum<slabpool::resource_errc> : std::true_type {};

namespace slabpool {

// The category of resource_errc codes ("slabpool.resource_pool"). Never fails.
SLABPOOL_API const std::error_category& resource_pool_category() noexcept;

// A resource_errc as a std::error_code. Never fails.
inline std::error_code make_error_code(resource_errc e) noexcept {
  return {static_cast<int>(e), resource_pool_category()};
}

// Base of every error resource_pool throws itself (a factory's own exceptions pass through as
// they are). code() tells which one.
class resource_pool_error : public std::system_error {
 public:
  resource_pool_error(resource_errc e, const std::string& what)
      : std::system_error(make_error_code(e), what) {}
};
// acquire() or acquire_until() reached its deadline with every object leased out.
class resource_pool_timeout : public resource_pool_error {
 public:
  using resource_pool_error::resource_pool_error;
};
// The pool is closed: acquire refused, or a waiter woken by close().
class resource_pool_closed : public resource_pool_error {
 public:
  using resource_pool_error::resource_pool_error;
};

// A snapshot of one pool (Go's DBStats plus HikariCP's reasons). Gauges are read without
// stopping the pool, so they are exact only when it is quiet; counters only ever grow.
struct resource_pool_stats {
  // Gauges.
  std::size_t max_open = 0;  // the bound (0 = unbounded)
  std::size_t open = 0;      // objects alive or being created (in use + idle + in transit)
  std::size_t in_use = 0;    // leased out now
  std::size_t idle = 0;      // ready in the pool
  std::size_t waiting = 0;   // threads blocked in acquire now
  // Waiting.
  std::uint64_t waits = 0;               // acquires that had to queue
  std::chrono::nanoseconds wait_time{};  // total time spent queued
  std::chrono::nanoseconds max_wait{};   // longest single wait
  std::uint64_t timeouts = 0;            // acquires that gave up at their deadline
  // Creation.
  std::uint64_t created = 0;          // factory successes
  std::uint64_t create_failures = 0;  // factory throws or empty results
  // Destruction, by reason.
  std::uint64_t destroyed_idle = 0;        // idle longer than idle_timeout
  std::uint64_t destroyed_lifetime = 0;    // older than their (jittered) max_lifetime
  std::uint64_t destroyed_broken = 0;      // lease.discard(), a throwing reset, failed keep-alive
  std::uint64_t destroyed_validation = 0;  // failed validation on borrow
  std::uint64_t destroyed_surplus = 0;     // returned while max_idle objects were idle
  std::uint64_t destroyed_closed = 0;      // destroyed by close() or the pool's destruction
  // Checks.
  std::uint64_t validations = 0;        // validate hook runs on borrow
  std::uint64_t keepalives = 0;         // keep-alive runs on idle objects
  std::uint64_t leaks_reported = 0;     // leases reported as held too long
  std::uint64_t abandoned_at_fork = 0;  // parent's objects a fork child forgot (never destroyed)
};

// Where acquire was called. std::source_location where the library has it (clang 14 with
// libstdc++ does not), else the compilers' builtins, which both GCC and clang evaluate at the
// caller when used as default arguments.
struct source_site {
  const char* file = "";
  const char* function = "";
  std::uint32_t line = 0;

  // The caller's site (as a default argument: the site of the function's caller).
  static constexpr source_site current(const char* file = __builtin_FILE(),
                                       const char* function = __builtin_FUNCTION(),
                                       unsigned line = __builtin_LINE()) noexcept {
    return source_site{file, function, line};
  }
#if defined(__cpp_lib_source_location)
  constexpr source_site(const std::source_location& l) noexcept  // NOLINT: implicit on purpose
      : file(l.file_name()), function(l.function_name()), line(l.line()) {}
#endif
  constexpr source_site() noexcept = default;
  constexpr source_site(const char* f, const char* fn, std::uint32_t l) noexcept
      : file(f), function(fn), line(l) {}
};

// A lease held longer than leak_threshold: reported once per lease, off the request path.
struct resource_leak {
  const char* pool_name;          // the pool's options.name
  std::chrono::nanoseconds held;  // how long it had been held when noticed
  const char* file;               // where acquire was called (std::source_location)
  const char* function;
  std::uint32_t line;
};

}  // namespace slabpool
