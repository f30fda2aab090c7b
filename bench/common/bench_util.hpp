// Small helpers shared by the workload programs and the instruction counter: a fast PRNG, a
// monotonic clock, resident-set readings and a tiny command-line parser. Header-only so every
// program stays a single translation unit plus this file.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

// xorshift64*: a few instructions per number, so the generator does not dominate what we measure
// (std::mt19937 costs as much as a malloc fast path).
class rng {
 public:
  explicit rng(uint64_t seed) : state_(seed ? seed : 0x9e3779b97f4a7c15ull) {}
  uint64_t next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545f4914f6cdd1dull;
  }
  // Uniform in [0, n); the modulo bias is irrelevant for workload shaping.
  uint64_t below(uint64_t n) { return next() % n; }

 private:
  uint64_t state_;
};

// A size from a skewed distribution typical of C++ programs: mostly small objects, some medium
// buffers, rare large ones. `max_size` caps the tail.
inline size_t skewed_size(rng& r, size_t max_size) {
  uint64_t roll = r.below(100);
  size_t size;
  if (roll < 70) {
    size = 8 + r.below(248);  // 8..255 B: nodes, small strings
  } else if (roll < 95) {
    size = 256 + r.below(3840);  // 256 B..4 KiB: buffers, vectors
  } else {
    size = 4096 + r.below(60 * 1024);  // 4..64 KiB: rare large buffers
  }
  return size < max_size ? size : max_size;
}

inline double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

// Resident set in bytes from /proc/self/statm. Uses only read(2) into a stack buffer so that it can
// be called from a sampling thread without allocating (an allocation there would perturb exactly
// the heap we observe).
inline size_t current_rss_bytes() {
  char buf[128];
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  unsigned long size_pages = 0, resident_pages = 0;
  if (std::sscanf(buf, "%lu %lu", &size_pages, &resident_pages) != 2) return 0;
  return resident_pages * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// Peak resident set (VmHWM) in bytes, 0 when unavailable.
inline size_t peak_rss_bytes() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  size_t kib = 0;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::strncmp(line, "VmHWM:", 6) == 0) kib = std::strtoull(line + 6, nullptr, 10);
  }
  std::fclose(f);
  return kib * 1024;
}

// Minimal "--name value" / "--flag" parser. Unknown options are an error so that a typo in a
// script does not silently run the default configuration.
class args {
 public:
  args(int argc, char** argv) : argv_(argv + 1, argv + argc) {}

  bool flag(std::string_view name) {
    for (size_t i = 0; i < argv_.size(); ++i) {
      if (argv_[i] == name) {
        argv_.erase(argv_.begin() + static_cast<long>(i));
        return true;
      }
    }
    return false;
  }
  std::string str(std::string_view name, std::string fallback) {
    for (size_t i = 0; i + 1 < argv_.size(); ++i) {
      if (argv_[i] == name) {
        std::string v = argv_[i + 1];
        argv_.erase(argv_.begin() + static_cast<long>(i), argv_.begin() + static_cast<long>(i) + 2);
        return v;
      }
    }
    return fallback;
  }
  double num(std::string_view name, double fallback) {
    std::string v = str(name, "");
    if (v.empty()) return fallback;
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end != '\0') {
      std::fprintf(stderr, "error: %.*s expects a number, got '%s'\n",
                   static_cast<int>(name.size()), name.data(), v.c_str());
      std::exit(2);
    }
    return d;
  }
  // Call after all options were read: reports anything left over and exits with status 2.
  void finish() const {
    if (argv_.empty()) return;
    std::fprintf(stderr, "error: unknown argument '%s' (see --help)\n", argv_.front().c_str());
    std::exit(2);
  }

 private:
  std::vector<std::string> argv_;
};

// Keeps a value alive in the optimiser's eyes, so a malloc/free pair is not folded away.
template <typename T>
inline void escape(T const& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

}  // namespace bench
