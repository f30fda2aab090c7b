// glibc's introspection functions, answered with slabpool's figures: mallinfo, mallinfo2,
// malloc_stats, malloc_info and mallopt. Without them a program would reach glibc's, which
// describe glibc's own heap: empty under the shim (all zeros with megabytes live).
//
// Locks: each function first takes a snapshot with sp_stats_get, which takes and releases heap
// locks and allocates nothing while it holds one. Only then does it write through stdio, which
// may allocate (through our malloc, with no slabpool lock held by this thread).
#include <malloc.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>

#include "shim.hpp"
#include "slabpool/slabpool.h"

namespace slabpool::preload {
namespace {

// The glibc fields slabpool has a figure for (README: "glibc's introspection under the shim"
// documents the mapping). Everything is mapped memory to slabpool, so glibc's separate count of
// mmapped chunks (hblks, hblkhd) stays 0 and large blocks are part of arena and uordblks; glibc has
// no fastbins here (smblks, fsmblks 0) and has not reported usmblks since 2.x (always 0).
struct glibc_figures {
  std::size_t arena;     // bytes mapped from the OS
  std::size_t ordblks;   // free blocks inside slabs
  std::size_t uordblks;  // bytes in live blocks
  std::size_t fordblks;  // arena - uordblks: everything mapped that is not a live block
  std::size_t keepcost;  // free but resident bytes kept for reuse (what malloc_trim gives back)
};

glibc_figures read_figures() noexcept {
  sp_stats st;
  sp_stats_get(&st);
  glibc_figures f{};
  f.arena = st.mapped;
  for (const sp_class_stats& c : st.classes) f.ordblks += c.free_blocks;
  f.uordblks = st.allocated;
  // Blocks another thread has staged count as live, so allocated can exceed what is mapped by
  // a little only in theory; never report a negative free figure.
  f.fordblks = st.mapped > st.allocated ? st.mapped - st.allocated : 0;
  f.keepcost = st.cached;
  return f;
}

int saturate(std::size_t value) noexcept {
  return value > static_cast<std::size_t>(INT_MAX) ? INT_MAX : static_cast<int>(value);
}

// The largest value mallopt may give an option; negative values ask glibc for "no limit".
long long clamp_option(sp_option which, int value) noexcept {
  const detail::option_spec& spec = detail::kOptionSpecs[which];
  if (value < 0 || value > spec.max_value) return spec.max_value;
  return value < spec.min_value ? spec.min_value : value;
}

}  // namespace
}  // namespace slabpool::preload

using namespace slabpool::preload;

extern "C" {

SLABPOOL_SHIM_EXPORT struct mallinfo2 mallinfo2() noexcept {
  const glibc_figures f = read_figures();
  struct mallinfo2 m {};
  m.arena = f.arena;
  m.ordblks = f.ordblks;
  m.uordblks = f.uordblks;
  m.fordblks = f.fordblks;
  m.keepcost = f.keepcost;
  return m;
}

// The int version glibc keeps for old programs; figures above INT_MAX saturate instead of
// wrapping as glibc's do.
SLABPOOL_SHIM_EXPORT struct mallinfo mallinfo() noexcept {
  const glibc_figures f = read_figures();
  struct mallinfo m {};
  m.arena = saturate(f.arena);
  m.ordblks = saturate(f.ordblks);
  m.uordblks = saturate(f.uordblks);
  m.fordblks = saturate(f.fordblks);
  m.keepcost = saturate(f.keepcost);
  return m;
}

// Like glibc's, on stderr; the text is sp_stats_print's. Formatting happens before stdio is
// involved, so no slabpool lock is held while stderr's lock is.
SLABPOOL_SHIM_EXPORT void malloc_stats() noexcept {
  char text[8192];
  const std::size_t need = sp_stats_format(text, sizeof(text), 0);
  char* out = text;
  char* grown = nullptr;
  if (need >= sizeof(text)) {
    grown = static_cast<char*>(std::malloc(need + 1));
    if (grown != nullptr) {
      sp_stats_format(grown, need + 1, 0);
      out = grown;
    }
  }
  std::fputs(out, stderr);
  std::fflush(stderr);
  std::free(grown);
}

// An XML document of slabpool's statistics, shaped like glibc's where the concepts meet
// (<sizes>, <total>, <system>, <aspace>) so that readers of glibc's format find their figures,
// plus a <slabpool> element with every sp_stats field and the options in force. glibc's rules:
// options must be 0 (else EINVAL, nothing written); 0 on success.
SLABPOOL_SHIM_EXPORT int malloc_info(int options, FILE* fp) noexcept {
  if (options != 0) return EINVAL;
  sp_stats st;
  sp_stats_get(&st);
  std::fprintf(fp, "<malloc version=\"1\" allocator=\"slabpool\">\n");
  std::fprintf(fp,
               "<slabpool allocated=\"%zu\" active=\"%zu\" resident=\"%zu\" mapped=\"%zu\" "
               "cached=\"%zu\" returned=\"%zu\" trims=\"%zu\" threads=\"%zu\" "
               "abandoned_slabs=\"%zu\" process_rss=\"%zu\" slab_resident=\"%zu\" "
               "empty_slab_bytes=\"%zu\" abandoned_resident=\"%zu\" thread_resident_max=\"%zu\" "
               "span_cache=\"%zu\" huge_cache=\"%zu\" large_resident=\"%zu\"/>\n",
               st.allocated, st.active, st.resident, st.mapped, st.cached, st.returned, st.trims,
               st.threads, st.abandoned_slabs, st.process_rss, st.slab_resident,
               st.empty_slab_bytes, st.abandoned_resident, st.thread_resident_max, st.span_cache,
               st.huge_cache, st.large_resident);
  // One <size> per class in use: its free blocks (glibc lists free chunks by size range), and
  // slabpool's slab and live-block counts.
  std::fprintf(fp, "<sizes>\n");
  std::size_t free_count = 0;
  std::size_t free_bytes = 0;
  std::size_t from = 1;
  for (const sp_class_stats& c : st.classes) {
    if (c.slabs != 0) {
      std::fprintf(fp,
                   "<size from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\" slabs=\"%zu\" "
                   "live=\"%zu\" resident=\"%zu\" empty_slabs=\"%zu\"/>\n",
                   from, c.block_size, c.free_blocks * c.block_size, c.free_blocks, c.slabs,
                   c.live_blocks, c.resident, c.empty_slabs);
      free_count += c.free_blocks;
      free_bytes += c.free_blocks * c.block_size;
    }
    from = c.block_size + 1;
  }
  std::fprintf(fp, "</sizes>\n");
  std::fprintf(fp, "<options>\n");
  for (int i = 0; i < slabpool::detail::kOptionCount; ++i) {
    std::fprintf(fp, "<option name=\"%s\" value=\"%lld\"/>\n",
                 slabpool::detail::kOptionSpecs[i].env_name, sp_option_get(i));
  }
  std::fprintf(fp, "</options>\n");
  std::fprintf(fp, "<total type=\"fast\" count=\"0\" size=\"0\"/>\n");
  std::fprintf(fp, "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n", free_count, free_bytes);
  std::fprintf(fp, "<system type=\"current\" size=\"%zu\"/>\n", st.mapped);
  std::fprintf(fp, "<aspace type=\"total\" size=\"%zu\"/>\n", st.mapped);
  std::fprintf(fp, "</malloc>\n");
  return 0;
}

// 1 when the setting was applied, 0 when slabpool has no equivalent (glibc returns 0 for what it
// refuses too). Only M_TRIM_THRESHOLD has one: like glibc's threshold above which free memory
// goes back to the OS, SLABPOOL_CACHE is the free resident memory kept process-wide beyond which
// the excess is returned at once. The README lists the knobs left unhonoured and why.
SLABPOOL_SHIM_EXPORT int mallopt(int param, int value) noexcept {
  switch (param) {
    case M_TRIM_THRESHOLD:
      return sp_option_set(SP_OPTION_CACHE_BYTES, clamp_option(SP_OPTION_CACHE_BYTES, value)) == 0
                 ? 1
                 : 0;
    default:
      return 0;
  }
}

}  // extern "C"
