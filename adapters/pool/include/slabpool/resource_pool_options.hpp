// slabpool — the settings of a resource_pool<T>, and their check.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

#include "slabpool/resource_pool_types.hpp"

namespace slabpool {

// Settings of a resource_pool<T>. Defaults follow HikariCP where it has one. Durations are
// measured with `clock` (below); a feature whose optional duration is empty is off.
template <class T>
struct resource_pool_options {
  static constexpr std::size_t kUnlimited = SIZE_MAX;

  std::string name = "resource_pool";  // in stats output and leak reports (first 47 bytes)
  std::size_t max_open = 16;           // objects alive at once, leased or idle; 0 = unbounded
  std::size_t max_idle = kUnlimited;   // idle objects kept; a return beyond it destroys the object
  std::size_t min_idle = 0;            // idle objects housekeeping keeps warm (creates ahead)
  std::chrono::nanoseconds acquire_timeout = std::chrono::seconds(30);  // acquire()'s default
  std::optional<std::chrono::nanoseconds> idle_timeout = std::chrono::minutes(10);
  std::optional<std::chrono::nanoseconds> max_lifetime = std::chrono::minutes(30);
  double lifetime_jitter = 0.025;  // up to this fraction is taken off each object's lifetime
  // Validation on borrow: runs `validate` only when the object has not been known good (returned,
  // validated, kept alive) for this long; a failed one is destroyed and replaced.
  std::chrono::nanoseconds validate_after = std::chrono::milliseconds(500);
  std::optional<std::chrono::nanoseconds> keepalive_interval;  // ping idle objects this often
  std::optional<std::chrono::nanoseconds> leak_threshold;      // report leases held longer

  // Hooks; all optional, all run with no lock held. Exceptions from destroy, validate, keepalive
  // and the leak reporter are swallowed (a throwing validate or keepalive counts as failed); a
  // throwing reset makes the object be destroyed as broken.
  std::function<void(T&)> destroy;    // before ~T: e.g. a protocol goodbye
  std::function<bool(T&)> validate;   // on borrow (see validate_after): false = broken
  std::function<bool(T&)> keepalive;  // on idle objects (empty: validate is used)
  std::function<void(T&)> reset;      // on return, before the object is reused
  std::function<void(const resource_leak&)> leak_reporter;  // empty: one line on stderr
  // Time for expiry, validation, leak detection and wait statistics (not for acquire's
  // deadline, which is the real steady clock). Null: CLOCK_MONOTONIC_COARSE. For tests.
  std::chrono::nanoseconds (*clock)() = nullptr;
};

namespace detail {

// The message is built with snprintf: GCC 12 warns falsely (-Wrestrict) on string concatenation.
[[noreturn]] inline void bad_option(const char* field, const char* why) {
  char text[256];
  std::snprintf(text, sizeof(text), "slabpool::resource_pool options: %s %s", field, why);
  throw std::invalid_argument(text);
}

[[noreturn]] inline void bad_bound(const char* field, std::size_t value, const char* other,
                                   std::size_t bound) {
  char why[160];
  std::snprintf(why, sizeof(why), "(%zu) exceeds %s (%zu)", value, other, bound);
  bad_option(field, why);
}

inline void check_positive(const char* field, std::chrono::nanoseconds d) {
  char why[96];
  std::snprintf(why, sizeof(why), "must be positive (got %lld ns)",
                static_cast<long long>(d.count()));
  if (d.count() <= 0) bad_option(field, why);
}

// Throws std::invalid_argument naming the first nonsensical field.
template <class T>
void check_options(const resource_pool_options<T>& o) {
  const std::size_t cap = o.max_open == 0 ? SIZE_MAX : o.max_open;
  if (o.max_idle != resource_pool_options<T>::kUnlimited && o.max_idle > cap)
    bad_bound("max_idle", o.max_idle, "max_open", o.max_open);
  if (o.min_idle > cap) bad_bound("min_idle", o.min_idle, "max_open", o.max_open);
  if (o.max_idle != resource_pool_options<T>::kUnlimited && o.min_idle > o.max_idle)
    bad_bound("min_idle", o.min_idle, "max_idle", o.max_idle);
  check_positive("acquire_timeout", o.acquire_timeout);
  check_positive("validate_after", o.validate_after);
  if (o.idle_timeout) check_positive("idle_timeout", *o.idle_timeout);
  if (o.max_lifetime) check_positive("max_lifetime", *o.max_lifetime);
  if (o.keepalive_interval) check_positive("keepalive_interval", *o.keepalive_interval);
  if (o.leak_threshold) check_positive("leak_threshold", *o.leak_threshold);
  if (!(o.lifetime_jitter >= 0.0 && o.lifetime_jitter <= 0.5))
    bad_option("lifetime_jitter", "must be within [0, 0.5]");
  if (o.keepalive_interval && !o.keepalive && !o.validate)
    bad_option("keepalive_interval", "needs a keepalive or validate hook");
  if (o.keepalive_interval && o.max_lifetime && *o.keepalive_interval >= *o.max_lifetime)
    bad_option("keepalive_interval", "must be shorter than max_lifetime");
}

}  // namespace detail
}  // namespace slabpool
