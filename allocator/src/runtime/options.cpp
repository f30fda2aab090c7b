#include "options.hpp"

#include <cerrno>
#include <cstring>

#include "mode.hpp"
#include "platform/platform.hpp"
#include "report.hpp"

namespace slabpool::detail {

constexpr std::int64_t kMiB = 1 << 20;

constexpr option_spec kOptionSpecs[kOptionCount] = {
    {"SLABPOOL_TRIM_DELAY_MS", "milliseconds, 0..3600000",
     "idle time after which free memory goes back to the OS", 500, 0, 3600000, false},
    {"SLABPOOL_TRIM_INTERVAL_MS", "milliseconds, 10..60000",
     "period of the decay passes (background thread and slow-path clock check)", 100, 10, 60000,
     false},
    {"SLABPOOL_BACKGROUND_TRIM", "0 or 1",
     "1 runs a background trimmer thread, 0 trims only on "
     "slow paths and explicit sp_trim()",
     1, 0, 1, false},
    {"SLABPOOL_MEMORY_LIMIT", "bytes with optional k/M/G suffix, 0 = none",
     "soft limit: while resident memory is above it, trimming ignores the delay", 0, 0,
     std::int64_t{1} << 50, true},
    {"SLABPOOL_THREAD_CACHE", "bytes with optional k/M/G suffix",
     "empty-slab bytes one thread keeps for reuse; the surplus goes back at the next pass",
     4 * kMiB, 0, std::int64_t{1} << 40, true},
    {"SLABPOOL_CACHE", "bytes with optional k/M/G suffix",
     "free but resident bytes of segments kept process-wide regardless of age (empty spans); "
     "half the bytes live in large blocks when that is more (freed huge blocks are kept for the "
     "delay regardless)",
     1 * kMiB, 0, std::int64_t{1} << 40, true},
    {"SLABPOOL_STATS", "0, 1 or 2", "1 prints the statistics to stderr at exit as text, 2 as JSON",
     0, 0, 2, false},
    {"SLABPOOL_VERBOSE", "0 or 1", "1 reports warnings and trim passes on stderr", 0, 0, 1, false},
    {"SLABPOOL_CHECKED", "0 or 1",
     "1 verifies every free (double, foreign, interior, wrong size, overflow) and aborts with a "
     "report; fixed at the first allocation",
     0, 0, 1, false},
};

// Every value starts at its spec's default (constant-initialised: readable before any start-up).
static_assert(kOptionCount == 9, "list every option's default below");
constinit std::atomic<std::int64_t> g_option_values[kOptionCount] = {
    kOptionSpecs[0].default_value, kOptionSpecs[1].default_value, kOptionSpecs[2].default_value,
    kOptionSpecs[3].default_value, kOptionSpecs[4].default_value, kOptionSpecs[5].default_value,
    kOptionSpecs[6].default_value, kOptionSpecs[7].default_value, kOptionSpecs[8].default_value,
};

namespace {

constinit once_flag g_options_once;

// "SLABPOOL_X=v: malformed or out-of-range value (expected <form>: <meaning>); keeping the
// default N": the warning names the variable, what it accepts and what it does.
void warn_rejected(const option_spec& spec, const char* value) {
  char default_text[24];
  format_decimal(default_text, static_cast<unsigned long long>(spec.default_value));
  warn({spec.env_name, "=", value, ": malformed or out-of-range value (expected ", spec.form, ": ",
        spec.meaning, "); keeping the default ", default_text});
}

void read_environment() {
  constexpr const char kPrefix[] = "SLABPOOL_";
  char** environment = os::environment();
  if (environment == nullptr) return;
  for (char** entry = environment; *entry != nullptr; ++entry) {
    const char* text = *entry;
    if (std::strncmp(text, kPrefix, sizeof(kPrefix) - 1) != 0) continue;
    const char* equals = std::strchr(text, '=');
    if (equals == nullptr) continue;
    const std::size_t name_length = static_cast<std::size_t>(equals - text);
    int which = -1;
    for (int i = 0; i < kOptionCount; ++i) {
      if (std::strlen(kOptionSpecs[i].env_name) == name_length &&
          std::strncmp(kOptionSpecs[i].env_name, text, name_length) == 0) {
        which = i;
      }
    }
    if (which < 0) {
      // Name the variable: print it up to the '=' through a bounded copy (no allocation).
      char name[96];
      const std::size_t n = name_length < sizeof(name) - 1 ? name_length : sizeof(name) - 1;
      std::memcpy(name, text, n);
      name[n] = '\0';
      warn({name, ": unknown option; see the README for the SLABPOOL_* list"});
      continue;
    }
    std::int64_t value = 0;
    if (parse_option_value(static_cast<sp_option>(which), equals + 1, &value)) {
      g_option_values[which].store(value, std::memory_order_relaxed);
    } else {
      warn_rejected(kOptionSpecs[which], equals + 1);
    }
  }
}

}  // namespace

bool parse_option_value(sp_option which, const char* text, std::int64_t* out) noexcept {
  const option_spec& spec = kOptionSpecs[which];
  if (text == nullptr || *text < '0' || *text > '9') return false;
  std::uint64_t value = 0;
  const char* c = text;
  for (; *c >= '0' && *c <= '9'; ++c) {
    value = value * 10 + static_cast<std::uint64_t>(*c - '0');
    if (value > (std::uint64_t{1} << 62)) return false;
  }
  if (spec.is_size && *c != '\0') {
    unsigned shift = 0;
    switch (*c) {
      case 'k':
      case 'K':
        shift = 10;
        break;
      case 'm':
      case 'M':
        shift = 20;
        break;
      case 'g':
      case 'G':
        shift = 30;
        break;
      default:
        return false;
    }
    ++c;
    if (*c == 'i' && c[1] == 'B')
      c += 2;  // accept KiB/MiB/GiB too
    else if (*c == 'B' || *c == 'b')
      ++c;  // and kB/MB/GB
    if (value > (std::uint64_t{1} << (62 - shift))) return false;
    value <<= shift;
  }
  if (*c != '\0') return false;
  const auto signed_value = static_cast<std::int64_t>(value);
  if (signed_value < spec.min_value || signed_value > spec.max_value) return false;
  *out = signed_value;
  return true;
}

void options_init() noexcept {
  os::run_once(g_options_once, read_environment);
}

}  // namespace slabpool::detail
