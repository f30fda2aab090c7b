// Statistics: gathered on read by walking every heap's slabs (under each heap's lock) and the
// pool's counters, so the allocation fast paths carry no counter at all.
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "heap/heap.hpp"
#include "heap/heap_registry.hpp"
#include "platform/platform.hpp"
#include "segment/segment.hpp"
#include "slabpool/slabpool.h"
#include "trim/trim.hpp"

namespace slabpool::detail {
namespace {

// Bytes of a slab touched so far: its carved blocks, to whole pages. Memory of a slab never
// carved has not been written, so the OS has not made it resident. An upper estimate, like
// `resident`: the last carved block may straddle a page the program has not written yet.
std::size_t slab_touched_bytes(const slab* s) {
  const std::size_t page = os::page_size();
  return (std::size_t{s->carved} * s->block_size + page - 1) & ~(page - 1);
}

void count_slab(sp_stats* out, const slab* s, std::uint32_t staged) {
  const std::size_t live = slab_live_blocks(s, staged);
  const std::size_t touched = slab_touched_bytes(s);
  sp_class_stats& c = out->classes[s->class_index];
  c.slabs += 1;
  c.live_blocks += live;
  c.free_blocks += s->capacity - live;
  c.resident += touched;
  out->slab_resident += touched;
  out->allocated += live * s->block_size;
  out->active += std::size_t{s->units} << kUnitShift;
  if (live == 0) {
    c.empty_slabs += 1;
    out->empty_slab_bytes += touched;
    out->cached += std::size_t{s->units} << kUnitShift;  // an empty slab kept for reuse
  }
}

void count_heap(heap* h, void* raw) {
  auto* out = static_cast<sp_stats*>(raw);
  out->threads += h->shared ? 0 : 1;  // the heap exited threads share is no thread's
  const std::size_t resident_before = out->slab_resident;
  std::lock_guard guard(h->lock);
  // The caller's own current slabs have staged blocks it may count; another thread's staged
  // blocks cannot be read safely and count as live (at most one refill batch per class).
  const bool own = h == tls_heap;
  for (unsigned cls = 0; cls < kClassCount; ++cls) {
    const heap_bin& bin = h->bins[cls];
    const slab* s = bin.ring;
    for (std::uint32_t i = 0; i < bin.slabs; ++i, s = s->next) {
      // Non-current slabs' staged lists (checked mode, the shared heap) change only under h->lock.
      const bool staged_readable = own || s != h->current[cls];
      count_slab(out, s, staged_readable ? list_length(s->free) : 0);
    }
  }
  const std::size_t held = out->slab_resident - resident_before;
  if (held > out->thread_resident_max) out->thread_resident_max = held;
}

void count_abandoned(slab* s, void* raw) {
  auto* out = static_cast<sp_stats*>(raw);
  out->abandoned_slabs += 1;
  const std::size_t resident_before = out->slab_resident;
  count_slab(out, s, 0);
  out->abandoned_resident += out->slab_resident - resident_before;
}

// Appends formatted text to a fixed buffer, counting what would not fit (snprintf semantics).
struct text_sink {
  char* buffer;
  std::size_t size;
  std::size_t length = 0;
  __attribute__((format(printf, 2, 3))) void add(const char* format, ...) {
    char* at = length < size ? buffer + length : nullptr;
    const std::size_t room = length < size ? size - length : 0;
    std::va_list args;
    va_start(args, format);
    const int n = std::vsnprintf(at, room, format, args);
    va_end(args);
    if (n > 0) length += static_cast<std::size_t>(n);
  }
};

// Sections added by adapters (sp_stats_add_section). A fixed table, no lock: a slot is claimed
// by CAS (free -> claimed), filled, then published (live). A reader announces itself in `active`
// before it checks `state`; removal unpublishes, then waits for `active` to drain. Either the
// reader sees the slot unpublished or the remover sees the reader, so a writer never runs after
// sp_stats_remove_section returns, and no lock is held while a writer runs.
constexpr unsigned kSections = 8;
enum : int { kSlotFree, kSlotClaimed, kSlotLive };
struct section_slot {
  std::atomic<int> state{kSlotFree};
  std::atomic<int> active{0};
  const char* name = nullptr;
  sp_stats_writer writer = nullptr;
  void* context = nullptr;
};
section_slot g_sections[kSections];

// Calls fn(name, writer, context) for every live section.
template <class F>
void for_each_section(F fn) {
  for (section_slot& slot : g_sections) {
    slot.active.fetch_add(1, std::memory_order_seq_cst);
    if (slot.state.load(std::memory_order_seq_cst) == kSlotLive)
      fn(slot.name, slot.writer, slot.context);
    slot.active.fetch_sub(1, std::memory_order_seq_cst);
  }
}

// Appends every section's output to `out` (JSON: a "sections" member, opened with a comma).
void add_sections(text_sink& out, int json) {
  bool first = true;
  for_each_section([&](const char* name, sp_stats_writer writer, void* context) {
    if (json) out.add("%s\"%s\":", first ? ",\"sections\":{" : ",", name);
    first = false;
    char* at = out.length < out.size ? out.buffer + out.length : nullptr;
    const std::size_t room = out.length < out.size ? out.size - out.length : 0;
    out.length += writer(at, room, json, context);
  });
  if (json && !first) out.add("}");
}

}  // namespace
}  // namespace slabpool::detail

using namespace slabpool::detail;

extern "C" int sp_stats_add_section(const char* name, sp_stats_writer writer, void* context) {
  if (name == nullptr || writer == nullptr) return EINVAL;
  for (section_slot& slot : g_sections) {
    int expected = kSlotFree;
    if (!slot.state.compare_exchange_strong(expected, kSlotClaimed, std::memory_order_acquire))
      continue;
    slot.name = name;
    slot.writer = writer;
    slot.context = context;
    slot.state.store(kSlotLive, std::memory_order_seq_cst);
    return 0;
  }
  return ENOMEM;
}

extern "C" int sp_stats_remove_section(sp_stats_writer writer, void* context) {
  for (section_slot& slot : g_sections) {
    int expected = kSlotLive;
    // Claim before reading the fields: a live slot's fields change only after it is unpublished.
    if (!slot.state.compare_exchange_strong(expected, kSlotClaimed, std::memory_order_seq_cst))
      continue;
    if (slot.writer != writer || slot.context != context) {
      slot.state.store(kSlotLive, std::memory_order_seq_cst);  // someone else's section
      continue;
    }
    while (slot.active.load(std::memory_order_seq_cst) != 0) os::yield();
    slot.state.store(kSlotFree, std::memory_order_release);
    return 0;
  }
  return ENOENT;
}

extern "C" void sp_stats_get(sp_stats* out) {
  std::memset(out, 0, sizeof(*out));
  for (unsigned cls = 0; cls < kClassCount; ++cls) out->classes[cls].block_size = class_size(cls);
  for_each_live_heap(count_heap, out);
  for_each_abandoned_slab(count_abandoned, out);
  const segment_pool_counters pool = segment_pool_read();
  out->allocated += pool.large_live;
  out->active += pool.large_live;
  out->resident = pool.resident;
  out->mapped = pool.mapped;
  out->cached += pool.free_resident;
  out->huge_cache = pool.huge_cached;
  out->span_cache = pool.free_resident - pool.huge_cached;
  out->large_resident = pool.large_live;
  out->returned = pool.returned;
  out->trims = trim_passes_run();
  out->process_rss = os::resident_bytes();
}

extern "C" size_t sp_stats_format(char* buffer, size_t size, int json) {
  sp_stats st;
  sp_stats_get(&st);
  text_sink out{buffer, size};
  if (size > 0) buffer[0] = '\0';
  if (json) {
    out.add(
        "{\"allocated\":%zu,\"active\":%zu,\"resident\":%zu,\"mapped\":%zu,\"cached\":%zu,"
        "\"returned\":%zu,\"trims\":%zu,\"threads\":%zu,\"abandoned_slabs\":%zu,"
        "\"process_rss\":%zu,\"where\":{\"slabs\":%zu,\"empty_slabs\":%zu,"
        "\"abandoned\":%zu,\"thread_max\":%zu,\"span_cache\":%zu,\"huge_cache\":%zu,"
        "\"large\":%zu},\"classes\":[",
        st.allocated, st.active, st.resident, st.mapped, st.cached, st.returned, st.trims,
        st.threads, st.abandoned_slabs, st.process_rss, st.slab_resident, st.empty_slab_bytes,
        st.abandoned_resident, st.thread_resident_max, st.span_cache, st.huge_cache,
        st.large_resident);
    bool first = true;
    for (const sp_class_stats& c : st.classes) {
      if (c.slabs == 0) continue;
      out.add(
          "%s{\"block_size\":%zu,\"slabs\":%zu,\"empty_slabs\":%zu,\"live_blocks\":%zu,"
          "\"free_blocks\":%zu,\"resident\":%zu}",
          first ? "" : ",", c.block_size, c.slabs, c.empty_slabs, c.live_blocks, c.free_blocks,
          c.resident);
      first = false;
    }
    out.add("]");
    add_sections(out, json);
    out.add("}\n");
  } else {
    constexpr double kMiB = 1024.0 * 1024.0;
    out.add("slabpool stats\n");
    out.add("  allocated %12.2f MiB   active   %12.2f MiB   resident %10.2f MiB\n",
            st.allocated / kMiB, st.active / kMiB, st.resident / kMiB);
    out.add("  mapped    %12.2f MiB   cached   %12.2f MiB   returned %10.2f MiB\n",
            st.mapped / kMiB, st.cached / kMiB, st.returned / kMiB);
    out.add("  trims %zu, threads %zu, abandoned slabs %zu, process RSS %.2f MiB\n", st.trims,
            st.threads, st.abandoned_slabs, st.process_rss / kMiB);
    out.add(
        "  resident in: slabs %.2f MiB (empty %.2f, abandoned %.2f, most one thread holds %.2f),"
        " large blocks %.2f MiB,\n    cached spans %.2f MiB, cached huge blocks %.2f MiB\n",
        st.slab_resident / kMiB, st.empty_slab_bytes / kMiB, st.abandoned_resident / kMiB,
        st.thread_resident_max / kMiB, st.large_resident / kMiB, st.span_cache / kMiB,
        st.huge_cache / kMiB);
    out.add("  %10s %8s %6s %12s %12s %7s %12s\n", "class", "slabs", "empty", "live", "free",
            "full%", "resident KiB");
    for (const sp_class_stats& c : st.classes) {
      if (c.slabs == 0) continue;
      const std::size_t blocks = c.live_blocks + c.free_blocks;
      out.add(
          "  %10zu %8zu %6zu %12zu %12zu %7.1f %12.1f\n", c.block_size, c.slabs, c.empty_slabs,
          c.live_blocks, c.free_blocks,
          blocks ? 100.0 * static_cast<double>(c.live_blocks) / static_cast<double>(blocks) : 0.0,
          c.resident / 1024.0);
    }
    add_sections(out, json);
  }
  return out.length;
}

extern "C" void sp_stats_print(int fd, int json) {
  char text[8192];
  const std::size_t n = sp_stats_format(text, sizeof(text), json);
  const std::size_t length = n < sizeof(text) ? n : sizeof(text) - 1;
  os::write_fd(fd, text, length);
}
