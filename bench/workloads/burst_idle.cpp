// Burst then idle: for each object size, allocate about --total-mib of it, free everything, and
// stay idle. A sampler thread records resident memory every --interval-ms, so the timeline shows
// whether (and how soon) the allocator gives the burst back to the OS while the program does
// nothing, the case decay-based trimming exists for. Prints the timeline as CSV and one RESULT line
// per object size.
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bench_alloc.hpp"
#include "bench_util.hpp"

namespace {

struct sample {
  double t;
  size_t rss;
  int phase;
};

// Phase labels are indices into this list so that the sampler never builds a string (it must not
// allocate: its allocations would land in the heap being observed).
std::vector<std::string> g_phase_names;
std::atomic<int> g_phase{0};

int new_phase(const std::string& name) {
  g_phase_names.push_back(name);
  return static_cast<int>(g_phase_names.size() - 1);
}

double mib(size_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

struct size_result {
  size_t size;
  double alloc_s;
  size_t peak;
  size_t after_free;
  size_t after_idle;
};

size_result burst(size_t size, size_t total, double idle_s, int alloc_phase, int free_phase,
                  int idle_phase) {
  const size_t count = total / size;
  // The pointer table comes from mmap, not from the allocator under test, and is unmapped before
  // the idle phase, so only the allocator's own footprint remains visible.
  const size_t table_bytes = count * sizeof(void*);
  auto* table = static_cast<void**>(
      mmap(nullptr, table_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (table == MAP_FAILED) {
    std::perror("mmap");
    std::exit(1);
  }
  size_result res{size, 0, 0, 0, 0};
  g_phase.store(alloc_phase);
  const double t0 = bench::now_seconds();
  for (size_t i = 0; i < count; ++i) {
    auto* p = static_cast<unsigned char*>(bench::mem_alloc(size));
    for (size_t off = 0; off < size; off += 4096) p[off] = 1;  // make every page resident
    p[size - 1] = 1;
    table[i] = p;
  }
  res.alloc_s = bench::now_seconds() - t0;
  res.peak = bench::current_rss_bytes();
  g_phase.store(free_phase);
  for (size_t i = 0; i < count; ++i) bench::mem_free(table[i]);
  munmap(table, table_bytes);
  res.after_free = bench::current_rss_bytes();
  g_phase.store(idle_phase);
  std::this_thread::sleep_for(std::chrono::duration<double>(idle_s));
  res.after_idle = bench::current_rss_bytes();
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a(argc, argv);
  if (a.flag("--help")) {
    std::printf(
        "usage: sp_wl_burst_idle [--total-mib M] [--sizes LIST] [--idle S] [--interval-ms N]\n"
        "                        [--csv PATH]\n"
        "For each object size in LIST (default 64,102400,4194304 bytes) allocates about M MiB\n"
        "(default 1024) touching every page, frees it all, then idles S seconds (default 3).\n"
        "A sampler thread reads /proc/self/statm every N ms (default 50).\n"
        "Writes the timeline CSV (t_s,rss_mib,phase) to PATH (default: stdout, after the RESULT\n"
        "lines, preceded by a line 'CSV'). Prints per size:\n"
        "RESULT workload=burst_idle size=.. alloc_s=.. peak_mib=.. after_free_mib=.. "
        "after_idle_mib=..\n");
    return 0;
  }
  const double total_mib = a.num("--total-mib", 1024);
  const std::string sizes_arg = a.str("--sizes", "64,102400,4194304");
  const double idle_s = a.num("--idle", 3);
  const double interval_ms = a.num("--interval-ms", 50);
  const std::string csv_path = a.str("--csv", "");
  a.finish();
  std::vector<size_t> sizes;
  for (size_t pos = 0; pos < sizes_arg.size();) {
    size_t comma = sizes_arg.find(',', pos);
    if (comma == std::string::npos) comma = sizes_arg.size();
    sizes.push_back(std::stoul(sizes_arg.substr(pos, comma - pos)));
    pos = comma + 1;
  }
  if (total_mib <= 0 || idle_s < 0 || interval_ms <= 0 || sizes.empty()) {
    std::fprintf(stderr, "error: invalid arguments (see --help)\n");
    return 2;
  }
  const auto total = static_cast<size_t>(total_mib * 1024 * 1024);

  // Phase names and the sample buffer are created up front; the sampler only writes into them.
  std::vector<int> phases;
  new_phase("start");
  for (size_t s : sizes) {
    for (const char* what : {"alloc", "free", "idle"}) {
      phases.push_back(new_phase(std::string(what) + ":" + std::to_string(s)));
    }
  }
  std::vector<sample> samples(200000);
  std::atomic<size_t> n_samples{0};
  std::atomic<bool> stop{false};
  const double t0 = bench::now_seconds();
  std::thread sampler([&] {
    const auto interval = std::chrono::duration<double, std::milli>(interval_ms);
    auto next = std::chrono::steady_clock::now();
    while (!stop.load() && n_samples.load() < samples.size()) {
      size_t i = n_samples.load();
      samples[i] = {bench::now_seconds() - t0, bench::current_rss_bytes(), g_phase.load()};
      n_samples.store(i + 1);
      next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(interval);
      std::this_thread::sleep_until(next);
    }
  });

  std::vector<size_result> results;
  for (size_t i = 0; i < sizes.size(); ++i) {
    results.push_back(
        burst(sizes[i], total, idle_s, phases[3 * i], phases[3 * i + 1], phases[3 * i + 2]));
  }
  stop.store(true);
  sampler.join();

  for (const size_result& r : results) {
    std::printf(
        "RESULT workload=burst_idle api=%s size=%zu total_mib=%.0f idle_s=%.2f "
        "alloc_s=%.3f peak_mib=%.1f after_free_mib=%.1f after_idle_mib=%.1f\n",
        bench::kAllocApi, r.size, total_mib, idle_s, r.alloc_s, mib(r.peak), mib(r.after_free),
        mib(r.after_idle));
  }
  FILE* out = stdout;
  if (!csv_path.empty()) {
    out = std::fopen(csv_path.c_str(), "w");
    if (out == nullptr) {
      std::perror(csv_path.c_str());
      return 1;
    }
  } else {
    std::printf("CSV\n");
  }
  std::fprintf(out, "t_s,rss_mib,phase\n");
  for (size_t i = 0; i < n_samples.load(); ++i) {
    std::fprintf(out, "%.3f,%.2f,%s\n", samples[i].t, mib(samples[i].rss),
                 g_phase_names[static_cast<size_t>(samples[i].phase)].c_str());
  }
  if (out != stdout) std::fclose(out);
  return 0;
}
