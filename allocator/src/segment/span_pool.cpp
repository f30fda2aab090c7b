// The pool of segments and spans: carving runs of units, giving them back, the huge-block cache,
// and the decay pass that returns idle memory to the OS.
#include <bit>
#include <mutex>
#include <new>

#include "platform/platform.hpp"
#include "segment.hpp"
#include "slabpool/detail/locks.hpp"

namespace slabpool::detail {

constinit std::atomic<std::uint64_t> g_segment_map[kSegmentMapChunks / 64] = {};

namespace {

// --- segment map -----------------------------------------------------------------------------

void segment_map_set(std::uintptr_t base, std::size_t size, bool present) {
  for (std::uintptr_t chunk = base >> kSegmentShift; chunk < (base + size) >> kSegmentShift;
       ++chunk) {
    const std::uint64_t bit = std::uint64_t{1} << (chunk % 64);
    if (present) {
      g_segment_map[chunk / 64].fetch_or(bit, std::memory_order_release);
    } else {
      g_segment_map[chunk / 64].fetch_and(~bit, std::memory_order_release);
    }
  }
}

// --- pool --------------------------------------------------------------------------------------
constexpr unsigned kHugeCacheSlots = 32;

// A run of whole segment-sized chunks we keep mapped and resident after a huge block was freed
// from it. Runs serve blocks of their size first, are split to serve smaller ones, glued together
// (moved by the kernel, pages and all) to serve bigger ones, and unmapped by the decay once idle.
// 32 slots: with 8, the 4 MiB surpluses of splits filled the table and pushed out runs about to
// be reused (issue 13: 61 evictions in 500 buffer replacements, each a run faulted in again).
struct huge_cache_entry {
  char* base;
  std::size_t bytes;
  std::uint64_t freed_ms;
};

// Counters are atomics so readers (stats) need no lock.
struct segment_pool {
  ranked<os_mutex> lock{lock_rank::segment_pool};
  // Regular segments that have at least one free unit, per span side (see segment::span_side).
  segment* with_free_units[2] = {};
  huge_cache_entry huge_cache[kHugeCacheSlots] = {};
  unsigned huge_cached = 0;
  std::atomic<std::size_t> mapped = 0;
  std::atomic<std::size_t> resident = 0;
  std::atomic<std::size_t> free_resident = 0;
  std::atomic<std::size_t> large_live = 0;
  std::atomic<std::size_t> returned = 0;
  std::atomic<std::size_t> segments = 0;
};
constinit segment_pool g_pool;

void add(std::atomic<std::size_t>& counter, std::size_t bytes) {
  counter.fetch_add(bytes, std::memory_order_relaxed);
}
void sub(std::atomic<std::size_t>& counter, std::size_t bytes) {
  counter.fetch_sub(bytes, std::memory_order_relaxed);
}

// The list is kept in address order: first fit over it packs spans towards low addresses, which
// keeps fragmentation down under churn and lets high segments drain and be unmapped.
void pool_link(segment* seg) {
  segment*& head = g_pool.with_free_units[seg->span_side];
  segment* before = nullptr;
  segment* after = head;
  while (after != nullptr && after < seg) {
    before = after;
    after = after->next;
  }
  seg->prev = before;
  seg->next = after;
  if (after) after->prev = seg;
  if (before)
    before->next = seg;
  else
    head = seg;
  seg->in_pool_list = true;
}

void pool_unlink(segment* seg) {
  if (seg->prev)
    seg->prev->next = seg->next;
  else
    g_pool.with_free_units[seg->span_side] = seg->next;
  if (seg->next) seg->next->prev = seg->prev;
  seg->next = seg->prev = nullptr;
  seg->in_pool_list = false;
}

// Marks units used or free, keeping "has a free unit" list membership right.
void mark_used(segment* seg, std::uint64_t mask) {
  seg->used_units |= mask;
  if (seg->used_units == ~std::uint64_t{0} && seg->in_pool_list) pool_unlink(seg);
}
void mark_free(segment* seg, std::uint64_t mask) {
  seg->used_units &= ~mask;
  if (!seg->in_pool_list) pool_link(seg);
}

constexpr std::uint64_t run_mask(unsigned first, unsigned units) {
  return (units >= 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << units) - 1)) << first;
}

// First unit index of a free run of `units` units starting at a multiple of `align_units`, or 0
// when there is none (unit 0 is never free, so 0 doubles as "not found").
unsigned find_free_run(std::uint64_t used, span_request request) {
  const std::uint64_t free_units = ~used;
  if (request.units == 1 && request.align_units == 1) {
    return free_units == 0 ? 0 : static_cast<unsigned>(std::countr_zero(free_units));
  }
  for (unsigned first = request.align_units; first + request.units <= kUnitsPerSegment;
       first += request.align_units) {
    const std::uint64_t mask = run_mask(first, request.units);
    if ((free_units & mask) == mask) return first;
  }
  return 0;
}

segment* map_segment() {
  void* memory = os::map_aligned(kSegmentSize, kSegmentSize);
  if (memory == nullptr) return nullptr;
  auto* seg = new (memory) segment();
  segment_map_set(reinterpret_cast<std::uintptr_t>(memory), kSegmentSize, true);
  add(g_pool.mapped, kSegmentSize);
  add(g_pool.resident, kSegmentHeaderBytes);
  add(g_pool.segments, 1);
  return seg;
}

// Unmaps `size` bytes at `base` (a segment or a cached run), of which `resident_bytes` were
// counted as resident.
void unmap_mapping(void* base, std::size_t size, std::size_t resident_bytes) {
  segment_map_set(reinterpret_cast<std::uintptr_t>(base), size, false);
  sub(g_pool.mapped, size);
  sub(g_pool.resident, resident_bytes);
  sub(g_pool.segments, 1);
  add(g_pool.returned, resident_bytes);
  os::unmap(base, size);
}

// A cached run: every page of it counted as resident.
void unmap_run(char* base, std::size_t bytes) {
  unmap_mapping(base, bytes, bytes);
}

// Gives back at least `bytes` of cached huge runs, oldest first (the tail chunks of a run bigger
// than what is left to give), because the pool is about to map that much anew. A freed big block
// kept for reuse must not sit idle beside memory mapped for something else: the process's resident
// memory would be the two together (issue 12: sqlite3 kept a freed 20 MiB sort buffer while its
// page cache grew into new segments). Reused, it costs nothing; in the way, it goes first. Caller
// holds the pool lock.
void give_way_to_new_mapping(std::size_t bytes) {
  while (bytes > 0 && g_pool.huge_cached > 0) {
    unsigned oldest = 0;
    for (unsigned i = 1; i < g_pool.huge_cached; ++i) {
      if (g_pool.huge_cache[i].freed_ms < g_pool.huge_cache[oldest].freed_ms) oldest = i;
    }
    huge_cache_entry& run = g_pool.huge_cache[oldest];
    const std::size_t cut = (bytes + kSegmentMask) & ~kSegmentMask;
    if (cut < run.bytes) {  // keep the run's head (its header) and the rest of it
      char* tail = run.base + (run.bytes - cut);
      segment_map_set(reinterpret_cast<std::uintptr_t>(tail), cut, false);
      os::unmap(tail, cut);
      run.bytes -= cut;
      sub(g_pool.free_resident, cut);
      sub(g_pool.mapped, cut);
      sub(g_pool.resident, cut);
      add(g_pool.returned, cut);
      return;
    }
    bytes -= run.bytes < bytes ? run.bytes : bytes;
    sub(g_pool.free_resident, run.bytes);
    unmap_run(run.base, run.bytes);
    run = g_pool.huge_cache[--g_pool.huge_cached];
  }
}

// Takes `take` bytes off the head of cached run `i` into *out. Caller holds the pool lock.
void take_from_cached_run(unsigned i, std::size_t take, huge_cache_entry* out) {
  huge_cache_entry& run = g_pool.huge_cache[i];
  *out = {run.base, take, run.freed_ms};
  sub(g_pool.free_resident, take);
  if (take < run.bytes) {  // split: the rest stays cached, as idle as it was
    run.base += take;
    run.bytes -= take;
    add(g_pool.segments, 1);
  } else {
    run = g_pool.huge_cache[--g_pool.huge_cached];
  }
}

// Takes the cached runs that make a block of `total` bytes: the smallest run at least as big (its
// surplus stays cached), else the biggest runs, until they add up to it; the last is split if it
// gives more than is left. Returns how many runs went into `out` (0 when the cache is empty; less
// than `total` in all when everything cached is less). Caller holds the pool lock.
unsigned take_cached_runs(std::size_t total, huge_cache_entry* out) {
  unsigned best = kHugeCacheSlots;
  for (unsigned i = 0; i < g_pool.huge_cached; ++i) {
    const std::size_t bytes = g_pool.huge_cache[i].bytes;
    if (bytes >= total && (best == kHugeCacheSlots || bytes < g_pool.huge_cache[best].bytes))
      best = i;
  }
  if (best != kHugeCacheSlots) {
    take_from_cached_run(best, total, out);
    return 1;
  }
  unsigned count = 0;
  std::size_t need = total;
  while (need > 0 && g_pool.huge_cached > 0) {
    unsigned biggest = 0;
    for (unsigned i = 1; i < g_pool.huge_cached; ++i) {
      if (g_pool.huge_cache[i].bytes > g_pool.huge_cache[biggest].bytes) biggest = i;
    }
    const std::size_t bytes = g_pool.huge_cache[biggest].bytes;
    take_from_cached_run(biggest, bytes < need ? bytes : need, &out[count]);
    need -= out[count++].bytes;
  }
  return count;
}

slab* carve_span(segment* seg, unsigned first, unsigned units, bool* zeroed) {
  const std::uint64_t mask = run_mask(first, units);
  const std::uint64_t was_dirty = seg->dirty_units & mask;
  *zeroed = was_dirty == 0;
  sub(g_pool.free_resident, static_cast<std::size_t>(std::popcount(was_dirty)) << kUnitShift);
  add(g_pool.resident, static_cast<std::size_t>(std::popcount(mask & ~was_dirty)) << kUnitShift);
  seg->dirty_units |= mask;
  mark_used(seg, mask);
  slab* span = &seg->slabs[first];
  span->area = reinterpret_cast<char*>(seg) + (std::size_t{first} << kUnitShift);
  span->units = static_cast<std::uint16_t>(units);
  for (unsigned u = first; u < first + units; ++u) seg->unit_slab[u] = span;
  return span;
}

// Where a huge block starts in its mapping: after the header, at its alignment.
std::size_t huge_area_offset(std::size_t alignment) {
  return alignment > kSegmentHeaderBytes ? alignment : kSegmentHeaderBytes;
}

std::size_t huge_total_size(std::size_t size, std::size_t alignment) {
  const std::size_t offset = huge_area_offset(alignment);
  // Whole chunks, so no foreign mapping can share a chunk the segment map calls ours.
  return (offset + size + kSegmentMask) & ~kSegmentMask;
}

slab* init_huge(void* memory, std::size_t total, std::size_t alignment) {
  auto* seg = new (memory) segment();
  seg->huge = true;
  seg->mapped_size = total;
  slab* span = &seg->slabs[0];
  const std::size_t offset = alignment > kSegmentHeaderBytes ? alignment : kSegmentHeaderBytes;
  span->area = static_cast<char*>(memory) + offset;
  span->kind = slab_kind::huge;
  span->block_size = 0;  // huge blocks report their size through the mapping
  for (slab*& entry : seg->unit_slab) entry = span;
  return span;
}

// Carves the first run that fits in the segments of `side` with free units, in address order; with
// `resident_only`, a run of free units that are still resident. nullptr when none fits. Caller
// holds the pool lock.
slab* carve_first_fit(std::uint8_t side, bool resident_only, span_request request, bool* zeroed) {
  for (segment* seg = g_pool.with_free_units[side]; seg != nullptr; seg = seg->next) {
    const std::uint64_t unavailable =
        resident_only ? seg->used_units | ~seg->dirty_units : seg->used_units;
    if (unsigned first = find_free_run(unavailable, request); first != 0) {
      return carve_span(seg, first, request.units, zeroed);
    }
  }
  return nullptr;
}

// A run of units chosen for decommit, reserved (marked used) while the lock is dropped so nobody
// carves it during the madvise.
struct decommit_run {
  segment* seg;
  unsigned first;
  unsigned units;
};

}  // namespace

slab* acquire_span(span_request request, bool* zeroed, bool may_map) noexcept {
  const std::uint8_t side = request.units == 1 && request.align_units == 1 ? 0 : 1;
  std::lock_guard guard(g_pool.lock);
  // Free units still resident first: reusing them costs no page fault and no new resident memory,
  // while a span cut from decommitted or never-used units would leave the resident ones idle in
  // the cache, counted in the process's RSS until the decay (issue 12). Then any free run, first
  // fit in address order.
  if (slab* span = carve_first_fit(side, true, request, zeroed)) return span;
  if (slab* span = carve_first_fit(side, false, request, zeroed)) return span;
  // Before a new segment is mapped, resident free units of the other side: a freed large block's
  // units serve small slabs rather than sit idle while new pages are faulted in beside them
  // (issue 12: python3 grew its slabs into untouched units while 3.4 MiB of freed large blocks
  // stayed resident). Only then: taken before our own side's free units, they scattered small
  // slabs over the runs large blocks need, and under an address-space limit a large block failed
  // with whole segments of our side free (tests/oom/rlimit_test).
  if (slab* span = carve_first_fit(side ^ 1, true, request, zeroed)) return span;
  // An empty segment of the other side can switch over before a new one is mapped.
  segment* seg = g_pool.with_free_units[side ^ 1];
  while (seg != nullptr && seg->used_units != 1) seg = seg->next;
  if (seg != nullptr) {
    pool_unlink(seg);
  } else {
    if (!may_map) return nullptr;
    give_way_to_new_mapping(kSegmentSize);
    seg = map_segment();
    if (seg == nullptr) return nullptr;
  }
  seg->span_side = side;
  pool_link(seg);
  return carve_span(seg, request.align_units, request.units, zeroed);
}

bool grow_span(slab* span, unsigned units) noexcept {
  segment* seg = segment_of(span->area);
  const unsigned first = static_cast<unsigned>(span - seg->slabs);
  if (units <= span->units || first + units > kUnitsPerSegment) return false;
  const std::uint64_t extra = run_mask(first + span->units, units - span->units);
  std::lock_guard guard(g_pool.lock);
  if ((seg->used_units & extra) != 0) return false;
  const std::uint64_t was_dirty = seg->dirty_units & extra;
  sub(g_pool.free_resident, static_cast<std::size_t>(std::popcount(was_dirty)) << kUnitShift);
  add(g_pool.resident, static_cast<std::size_t>(std::popcount(extra & ~was_dirty)) << kUnitShift);
  seg->dirty_units |= extra;
  mark_used(seg, extra);
  for (unsigned u = first + span->units; u < first + units; ++u) seg->unit_slab[u] = span;
  span->units = static_cast<std::uint16_t>(units);
  return true;
}

void release_span(slab* span, std::uint64_t idle_since_ms) noexcept {
  segment* seg = segment_of(span->area);
  const unsigned first = static_cast<unsigned>(span - seg->slabs);
  const unsigned units = span->units;
  span->kind = slab_kind::unused;
  span->owner.store(nullptr, std::memory_order_relaxed);
  std::lock_guard guard(g_pool.lock);
  for (unsigned u = first; u < first + units; ++u) seg->unit_freed_ms[u] = idle_since_ms;
  add(g_pool.free_resident, std::size_t{units} << kUnitShift);
  mark_free(seg, run_mask(first, units));
}

slab* acquire_huge(std::size_t size, std::size_t alignment, std::size_t* dirty) noexcept {
  if (size > (std::size_t{1} << kAddressBits)) return nullptr;
  const std::size_t total = huge_total_size(size, alignment);
  const std::size_t offset = huge_area_offset(alignment);
  huge_cache_entry pieces[kHugeCacheSlots];
  unsigned count;
  {
    std::lock_guard guard(g_pool.lock);
    count = take_cached_runs(total, pieces);
  }
  if (count == 1 && pieces[0].bytes == total) {
    *dirty = total - offset;  // it was in use before: not known to be zero
    return init_huge(pieces[0].base, total, alignment);
  }
  // No cached run is big enough: the block is glued from the cached ones. The kernel moves their
  // pages into the head of a fresh mapping (no copy, no fault) and only the rest is faulted in.
  // Growing one run and leaving the others cached faulted in a chunk or two per block while the
  // runs beside it sat idle (issue 13: a third of big-buffer reuse went to the kernel zeroing
  // pages).
  auto* memory = static_cast<char*>(os::map_aligned(total, kSegmentSize));
  std::size_t moved = 0;
  bool whole = memory != nullptr;
  for (unsigned i = 0; i < count; ++i) {
    segment_map_set(reinterpret_cast<std::uintptr_t>(pieces[i].base), pieces[i].bytes, false);
    if (whole) {
      whole = os::move_pages(pieces[i].base, pieces[i].bytes, memory + moved, kSegmentSize);
    } else {
      os::unmap(pieces[i].base, pieces[i].bytes);
    }
    moved += pieces[i].bytes;
  }
  if (!whole) {
    if (memory != nullptr) os::unmap(memory, total);
    std::lock_guard guard(g_pool.lock);
    sub(g_pool.mapped, moved);
    sub(g_pool.resident, moved);
    sub(g_pool.segments, count);
    add(g_pool.returned, moved);
    return nullptr;
  }
  // No MADV_HUGEPAGE: where the system leaves huge pages to the program (`madvise`), a fresh
  // 2 MiB page can cost more than its 512 small faults. On this project's VM the big-buffer
  // workload spent 0.33 s or 0.8 s in the kernel with huge pages, depending on what ran before it,
  // and 0.30-0.40 s with small pages (issue 13). Like glibc, jemalloc, mimalloc and tcmalloc by
  // default, we leave the choice to the system's THP setting.
  *dirty = moved > offset ? moved - offset : 0;
  slab* span = init_huge(memory, total, alignment);
  segment_map_set(reinterpret_cast<std::uintptr_t>(memory), total, true);
  std::lock_guard guard(g_pool.lock);
  add(g_pool.mapped, total - moved);
  add(g_pool.resident, total - moved);
  add(g_pool.segments, 1);
  sub(g_pool.segments, count);
  return span;
}

namespace {

// The free units (of segments) kept resident for reuse regardless of age: the configured budget
// (SLABPOOL_CACHE), or half the bytes live in large and huge blocks when that is more. A program
// that keeps replacing big blocks reuses the ones it freed only if they are still there; half the
// live bytes bounds what this adds to the resident memory of a busy program (issue 12); the decay
// still returns all of it once idle. Kept huge runs are not counted: see release_huge.
std::size_t scaled_cache_budget(std::size_t configured) {
  const std::size_t half_live = g_pool.large_live.load(std::memory_order_relaxed) / 2;
  return configured > half_live ? configured : half_live;
}

}  // namespace

slab* resize_huge(slab* span, std::size_t size) noexcept {
  if (size > (std::size_t{1} << kAddressBits)) return nullptr;
  auto* base = reinterpret_cast<char*>(segment_of(span->area));
  const auto offset = static_cast<std::size_t>(span->area - base);
  const std::size_t old_total = segment_of(span->area)->mapped_size;
  const std::size_t total = (offset + size + kSegmentMask) & ~kSegmentMask;
  if (total == old_total) return span;
  if (total < old_total) {
    // Whole chunks off the end: the segment map loses them before anyone else can map there.
    const std::size_t tail = old_total - total;
    segment_map_set(reinterpret_cast<std::uintptr_t>(base) + total, tail, false);
    os::unmap(base + total, tail);
    segment_of(span->area)->mapped_size = total;
    sub(g_pool.mapped, tail);
    sub(g_pool.resident, tail);
    add(g_pool.returned, tail);
    return span;
  }
  // The growth is new memory: kept runs give way to it, as to a new segment (issue 12: sqlite3's
  // sort buffer, grown by doubling, faulted in 8 MiB beside a 4 MiB kept run left by the last
  // sort).
  {
    std::lock_guard guard(g_pool.lock);
    give_way_to_new_mapping(total - old_total);
  }
  // The old range leaves the segment map first: once the kernel has moved the pages, a foreign
  // mapping may take it.
  segment_map_set(reinterpret_cast<std::uintptr_t>(base), old_total, false);
  void* moved = os::remap_aligned(base, old_total, total, kSegmentSize);
  if (moved == nullptr) {
    segment_map_set(reinterpret_cast<std::uintptr_t>(base), old_total, true);
    return nullptr;
  }
  segment_map_set(reinterpret_cast<std::uintptr_t>(moved), total, true);
  add(g_pool.mapped, total - old_total);
  add(g_pool.resident, total - old_total);
  // The header moved with the pages; its pointers into itself are rebuilt.
  auto* seg = static_cast<segment*>(moved);
  seg->mapped_size = total;
  slab* moved_span = &seg->slabs[0];
  moved_span->area = static_cast<char*>(moved) + offset;
  for (slab*& entry : seg->unit_slab) entry = moved_span;
  return moved_span;
}

void release_huge(slab* span, std::uint64_t now_ms) noexcept {
  segment* seg = segment_of(span->area);
  huge_cache_entry run{reinterpret_cast<char*>(seg), seg->mapped_size, now_ms};
  span->kind = slab_kind::unused;
  huge_cache_entry evicted{};
  bool evict = false;
  {
    std::lock_guard guard(g_pool.lock);
    // Kept whatever its size, for the decay to return once idle. A kept run never raises the
    // peak: a new block is made from the kept runs before anything new is mapped for it, so the
    // big blocks' mapped memory stays within their recent peak of live bytes, and a new segment
    // makes kept runs give way. A budget on top (SLABPOOL_CACHE or half the live big bytes) threw
    // away runs about to be reused: with buffers of 256 KiB-64 MiB it unmapped 1.8 GiB in 500
    // replacements, each faulted in again (issue 13).
    if (g_pool.huge_cached == kHugeCacheSlots) {  // the oldest makes room for the newest
      unsigned oldest = 0;
      for (unsigned i = 1; i < g_pool.huge_cached; ++i) {
        if (g_pool.huge_cache[i].freed_ms < g_pool.huge_cache[oldest].freed_ms) oldest = i;
      }
      evicted = g_pool.huge_cache[oldest];
      evict = true;
      sub(g_pool.free_resident, evicted.bytes);
      g_pool.huge_cache[oldest] = g_pool.huge_cache[--g_pool.huge_cached];
    }
    // Not merged with cached neighbours: a block's pages are resident only as far as it was used,
    // so the run it leaves is best reused whole, by a block of the same size (the smallest fit
    // finds it), rather than cut elsewhere out of a merged run.
    g_pool.huge_cache[g_pool.huge_cached++] = run;
    add(g_pool.free_resident, run.bytes);
  }
  if (evict) unmap_run(evicted.base, evicted.bytes);
}

std::size_t segment_pool_decay(std::uint64_t now_ms, std::uint64_t delay_ms, bool force,
                               std::size_t cache_budget, bool* pending) noexcept {
  cache_budget = scaled_cache_budget(cache_budget);
  auto idle = [&](std::uint64_t since) { return force || now_ms - since >= delay_ms; };
  constexpr unsigned kBatch = 64;
  std::size_t returned = 0;
  *pending = false;
  for (;;) {
    decommit_run runs[kBatch];
    unsigned run_count = 0;
    segment* to_unmap[kBatch];
    unsigned unmap_count = 0;
    std::size_t unmap_resident[kBatch];
    huge_cache_entry huge_out[kHugeCacheSlots];
    unsigned huge_out_count = 0;
    bool more = false;
    {
      std::lock_guard guard(g_pool.lock);
      // Kept huge runs go by age alone (see release_huge); the budget bounds the free units.
      for (unsigned i = 0; i < g_pool.huge_cached;) {
        if (idle(g_pool.huge_cache[i].freed_ms)) {
          sub(g_pool.free_resident, g_pool.huge_cache[i].bytes);
          huge_out[huge_out_count++] = g_pool.huge_cache[i];
          g_pool.huge_cache[i] = g_pool.huge_cache[--g_pool.huge_cached];
        } else {
          *pending = true;
          ++i;
        }
      }
      std::size_t huge_kept = 0;
      for (unsigned i = 0; i < g_pool.huge_cached; ++i) huge_kept += g_pool.huge_cache[i].bytes;
      std::size_t excess = 0;
      const std::size_t free_units =
          g_pool.free_resident.load(std::memory_order_relaxed) - huge_kept;
      if (free_units > cache_budget) excess = free_units - cache_budget;
      // Decommits the idle free units of one segment, or takes the whole segment when empty.
      auto visit = [&](segment* seg) {
        const std::uint64_t free_dirty = ~seg->used_units & seg->dirty_units;
        if (seg->used_units == 1) {  // empty: the whole mapping can go
          bool all_idle = true;
          for (unsigned u = 1; u < kUnitsPerSegment && all_idle; ++u) {
            all_idle = ((free_dirty >> u) & 1) == 0 || idle(seg->unit_freed_ms[u]);
          }
          if (all_idle || excess > 0) {
            if (unmap_count == kBatch) {
              more = true;
              return;
            }
            const std::size_t dirty_bytes = static_cast<std::size_t>(std::popcount(free_dirty))
                                            << kUnitShift;
            excess = excess > dirty_bytes ? excess - dirty_bytes : 0;
            sub(g_pool.free_resident, dirty_bytes);
            pool_unlink(seg);
            unmap_resident[unmap_count] = dirty_bytes + kSegmentHeaderBytes;
            to_unmap[unmap_count++] = seg;
            return;
          }
        }
        // Decommit maximal runs of free dirty units that are idle (or over budget).
        for (unsigned u = 1; u < kUnitsPerSegment;) {
          if (((free_dirty >> u) & 1) == 0) {
            ++u;
            continue;
          }
          if (!idle(seg->unit_freed_ms[u]) && excess == 0) {
            *pending = true;
            ++u;
            continue;
          }
          unsigned end = u + 1;
          while (end < kUnitsPerSegment && ((free_dirty >> end) & 1) &&
                 (idle(seg->unit_freed_ms[end]) || excess > 0)) {
            ++end;
          }
          if (run_count == kBatch) {
            more = true;
            return;
          }
          const std::uint64_t mask = run_mask(u, end - u);
          const std::size_t bytes = std::size_t{end - u} << kUnitShift;
          excess = excess > bytes ? excess - bytes : 0;
          seg->dirty_units &= ~mask;
          mark_used(seg, mask);  // reserved while the lock is dropped
          sub(g_pool.free_resident, bytes);
          runs[run_count++] = {seg, u, end - u};
          u = end;
        }
      };
      for (unsigned side = 0; side < 2 && !more; ++side) {
        for (segment* seg = g_pool.with_free_units[side]; seg != nullptr && !more;) {
          segment* next = seg->next;  // visit may unlink seg
          visit(seg);
          seg = next;
        }
      }
    }
    for (unsigned i = 0; i < run_count; ++i) {
      const std::size_t bytes = std::size_t{runs[i].units} << kUnitShift;
      os::decommit(
          reinterpret_cast<char*>(runs[i].seg) + (std::size_t{runs[i].first} << kUnitShift), bytes);
      returned += bytes;
    }
    for (unsigned i = 0; i < unmap_count; ++i) {
      returned += unmap_resident[i];
      unmap_mapping(to_unmap[i], to_unmap[i]->mapped_size, unmap_resident[i]);
    }
    for (unsigned i = 0; i < huge_out_count; ++i) {
      returned += huge_out[i].bytes;
      unmap_run(huge_out[i].base, huge_out[i].bytes);
    }
    if (run_count > 0) {
      std::lock_guard guard(g_pool.lock);
      for (unsigned i = 0; i < run_count; ++i) {
        mark_free(runs[i].seg, run_mask(runs[i].first, runs[i].units));
      }
      std::size_t bytes = 0;
      for (unsigned i = 0; i < run_count; ++i) bytes += std::size_t{runs[i].units} << kUnitShift;
      sub(g_pool.resident, bytes);
      add(g_pool.returned, bytes);
    }
    if (!more) break;
  }
  return returned;
}

void segment_pool_note_large(std::size_t bytes, bool live) noexcept {
  if (live)
    add(g_pool.large_live, bytes);
  else
    sub(g_pool.large_live, bytes);
}

void segment_pool_lock_for_fork() noexcept {
  g_pool.lock.raw().lock();
}
void segment_pool_unlock_after_fork() noexcept {
  g_pool.lock.raw().unlock();
}

std::size_t segment_bytes_mapped() noexcept {
  return g_pool.mapped.load(std::memory_order_relaxed);
}

segment_pool_counters segment_pool_read() noexcept {
  // The cache's slots and free_resident change together under the lock: read them together, so
  // the huge cache is always a part of the free resident bytes.
  std::size_t huge_cached = 0;
  std::size_t free_resident = 0;
  {
    std::lock_guard guard(g_pool.lock);
    for (unsigned i = 0; i < g_pool.huge_cached; ++i) huge_cached += g_pool.huge_cache[i].bytes;
    free_resident = g_pool.free_resident.load(std::memory_order_relaxed);
  }
  return {g_pool.mapped.load(std::memory_order_relaxed),
          g_pool.resident.load(std::memory_order_relaxed),
          free_resident,
          huge_cached,
          g_pool.large_live.load(std::memory_order_relaxed),
          g_pool.returned.load(std::memory_order_relaxed),
          g_pool.segments.load(std::memory_order_relaxed)};
}

}  // namespace slabpool::detail
