// Big-buffer reuse (issue 13): a program keeps --buffers buffers of several MiB and, --iterations
// times, replaces a random one with a fresh zero-initialised one (std::make_unique<char[]>(n):
// operator new[] plus zeroing, as image, codec and network code does). An allocator that gives a
// freed big block back to the OS at once pays a page fault per 4 KiB of every new buffer; one that
// keeps it resident reuses it. Then everything is freed and the program goes idle: the RSS read
// after --idle seconds shows whether the allocator gives the memory back while nothing happens.
// Prints one machine-readable RESULT line.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_alloc.hpp"
#include "bench_util.hpp"

namespace {

double mib(size_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

long minor_faults() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

// "5M", "256K", "1G", "4096": bytes; 0 on a malformed value.
size_t parse_size(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || v <= 0) return 0;
  double mult = 1;
  const std::string unit(end);
  if (unit == "K" || unit == "k") {
    mult = 1024.0;
  } else if (unit == "M" || unit == "m") {
    mult = 1024.0 * 1024.0;
  } else if (unit == "G" || unit == "g") {
    mult = 1024.0 * 1024.0 * 1024.0;
  } else if (!unit.empty()) {
    return 0;
  }
  return static_cast<size_t>(v * mult);
}

// A size in [lo, hi]: uniform, or log-uniform (every doubling equally likely).
struct size_dist {
  size_t lo, hi;
  bool log;
  size_t draw(bench::rng& r) const {
    const double u = static_cast<double>(r.next() >> 11) * 0x1.0p-53;  // [0, 1)
    double v;
    if (log) {
      v = std::exp(std::log(static_cast<double>(lo)) +
                   u * (std::log(static_cast<double>(hi)) - std::log(static_cast<double>(lo))));
    } else {
      v = static_cast<double>(lo) + u * static_cast<double>(hi - lo + 1);
    }
    size_t n = static_cast<size_t>(v);
    return n < lo ? lo : n > hi ? hi : n;
  }
};

// Reads one byte per 4 KiB page, so the buffer counts as used and the zeroing cannot be dropped.
unsigned touch(const char* p, size_t n) {
  unsigned sum = 0;
  for (size_t off = 0; off < n; off += 4096) sum += static_cast<unsigned char>(p[off]);
  return sum + static_cast<unsigned char>(p[n - 1]);
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a(argc, argv);
  if (a.flag("--help")) {
    std::printf(
        "usage: sp_wl_big_buffers [--iterations N] [--buffers B] [--sizes LO-HI]\n"
        "                         [--dist uniform|log] [--idle S] [--seed X]\n"
        "Keeps B buffers (default 20) of LO..HI bytes (default 5M-25M; K, M, G suffixes) and N\n"
        "times (default 2000) replaces a random one with a fresh zero-initialised one\n"
        "(std::make_unique<char[]>(n): new[] plus zeroing), reading one byte per page of it.\n"
        "Sizes are uniform (default) or, with --dist log, log-uniform (the 256K-64M variant).\n"
        "The random sequence is fixed by --seed (default 13). Then frees every buffer, sleeps\n"
        "S seconds (default 1.2) and reads RSS again. Prints:\n"
        "RESULT workload=big_buffers api=.. dist=.. buffers=.. iterations=.. min_size=..\n"
        "       max_size=.. seconds=.. ms_per_buffer=.. minflt=.. minflt_per_buffer=..\n"
        "       start_mib=.. peak_mib=.. after_free_mib=.. after_idle_mib=.. idle_excess_mib=..\n"
        "       idle_s=..\n"
        "seconds covers the first fill and the N replacements; minflt = minor page faults\n"
        "(getrusage) in that time; peak_mib = VmHWM; start_mib = RSS before the first buffer;\n"
        "idle_excess_mib = after_idle_mib - start_mib.\n");
    return 0;
  }
  const auto iterations = static_cast<long>(a.num("--iterations", 2000));
  const auto buffers = static_cast<size_t>(a.num("--buffers", 20));
  const std::string sizes_arg = a.str("--sizes", "5M-25M");
  const std::string dist_arg = a.str("--dist", "uniform");
  const double idle_s = a.num("--idle", 1.2);
  const auto seed = static_cast<uint64_t>(a.num("--seed", 13));
  a.finish();
  const size_t dash = sizes_arg.find('-');
  size_dist dist{0, 0, dist_arg == "log"};
  if (dash != std::string::npos) {
    dist.lo = parse_size(sizes_arg.substr(0, dash));
    dist.hi = parse_size(sizes_arg.substr(dash + 1));
  }
  if (iterations < 0 || buffers < 1 || idle_s < 0 || dist.lo == 0 || dist.hi < dist.lo ||
      (dist_arg != "uniform" && dist_arg != "log")) {
    std::fprintf(stderr, "error: invalid arguments (see --help)\n");
    return 2;
  }

  bench::rng r(seed);
  std::vector<std::unique_ptr<char[]>> table(buffers);
  std::vector<size_t> lengths(buffers, 0);
  unsigned sum = 0;
  const size_t start_rss = bench::current_rss_bytes();
  const long faults0 = minor_faults();
  const double t0 = bench::now_seconds();
  for (size_t i = 0; i < buffers; ++i) {
    lengths[i] = dist.draw(r);
    table[i] = std::make_unique<char[]>(lengths[i]);
    sum += touch(table[i].get(), lengths[i]);
  }
  for (long it = 0; it < iterations; ++it) {
    const size_t i = r.below(buffers);
    const size_t n = dist.draw(r);
    table[i] = std::make_unique<char[]>(n);  // the new buffer exists before the old one goes
    lengths[i] = n;
    sum += touch(table[i].get(), n);
  }
  const double seconds = bench::now_seconds() - t0;
  const long faults = minor_faults() - faults0;
  const size_t peak = bench::peak_rss_bytes();
  bench::escape(sum);
  for (auto& p : table) p.reset();
  const size_t after_free = bench::current_rss_bytes();
  std::this_thread::sleep_for(std::chrono::duration<double>(idle_s));
  const size_t after_idle = bench::current_rss_bytes();

  const double replaced = static_cast<double>(buffers) + static_cast<double>(iterations);
  std::printf(
      "RESULT workload=big_buffers api=%s dist=%s buffers=%zu iterations=%ld min_size=%zu "
      "max_size=%zu seconds=%.3f ms_per_buffer=%.4f minflt=%ld minflt_per_buffer=%.1f "
      "start_mib=%.1f peak_mib=%.1f after_free_mib=%.1f after_idle_mib=%.1f "
      "idle_excess_mib=%.1f idle_s=%.2f\n",
      bench::kAllocApi, dist.log ? "log" : "uniform", buffers, iterations, dist.lo, dist.hi,
      seconds, 1e3 * seconds / replaced, faults, static_cast<double>(faults) / replaced,
      mib(start_rss), mib(peak), mib(after_free), mib(after_idle), mib(after_idle) - mib(start_rss),
      idle_s);
  return 0;
}
