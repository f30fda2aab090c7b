#include "segment.hpp"

#include <bit>
#include <mutex>
#include <new>

#include "os.hpp"

namespace slabpool::detail {
namespace {

// --- segment map -----------------------------------------------------------------------------
constexpr std::size_t kMapChunks = std::size_t{1} << (kAddressBits - kSegmentShift);
constinit std::atomic<std::uint64_t> g_segment_map[kMapChunks / 64] = {};

void segment_map_set(std::uintptr_t base, std::size_t size, bool present) {
  for (std::uintptr_t chunk = base >> kSegmentShift; chunk < (base + size) >> kSegmentShift; ++chunk) {
    const std::uint64_t bit = std::uint64_t{1} << (chunk % 64);
    if (present) {
      g_segment_map[chunk / 64].fetch_or(bit, std::memory_order_release);
    } else {
      g_segment_map[chunk / 64].fetch_and(~bit, std::memory_order_release);
    }
  }
}

// --- pool --------------------------------------------------------------------------------------
struct segment_pool {
  std::mutex lock;
  segment* with_free_units = nullptr;  // regular segments that have at least one free unit
  std::atomic<std::size_t> mapped_bytes = 0;
};
constinit segment_pool g_pool;

void pool_link(segment* seg) {
  seg->prev = nullptr;
  seg->next = g_pool.with_free_units;
  if (seg->next) seg->next->prev = seg;
  g_pool.with_free_units = seg;
  seg->in_pool_list = true;
}

void pool_unlink(segment* seg) {
  if (seg->prev) seg->prev->next = seg->next;
  else g_pool.with_free_units = seg->next;
  if (seg->next) seg->next->prev = seg->prev;
  seg->next = seg->prev = nullptr;
  seg->in_pool_list = false;
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
  g_pool.mapped_bytes.fetch_add(kSegmentSize, std::memory_order_relaxed);
  return seg;
}

slab* carve_span(segment* seg, unsigned first, unsigned units, bool* zeroed) {
  const std::uint64_t mask = run_mask(first, units);
  *zeroed = (seg->dirty_units & mask) == 0;
  seg->used_units |= mask;
  seg->dirty_units |= mask;
  slab* span = &seg->slabs[first];
  span->area = reinterpret_cast<char*>(seg) + (std::size_t{first} << kUnitShift);
  span->units = static_cast<std::uint16_t>(units);
  for (unsigned u = first; u < first + units; ++u) seg->unit_slab[u] = span;
  if (seg->used_units == ~std::uint64_t{0}) pool_unlink(seg);
  return span;
}

}  // namespace

bool segment_map_contains(const void* p) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  if ((a >> kAddressBits) != 0) return false;
  const std::uintptr_t chunk = a >> kSegmentShift;
  return (g_segment_map[chunk / 64].load(std::memory_order_acquire) >> (chunk % 64)) & 1;
}

slab* acquire_span(span_request request, bool* zeroed) noexcept {
  std::lock_guard guard(g_pool.lock);
  for (segment* seg = g_pool.with_free_units; seg != nullptr; seg = seg->next) {
    if (unsigned first = find_free_run(seg->used_units, request); first != 0) {
      return carve_span(seg, first, request.units, zeroed);
    }
  }
  segment* seg = map_segment();
  if (seg == nullptr) return nullptr;
  pool_link(seg);
  return carve_span(seg, request.align_units, request.units, zeroed);
}

void release_span(slab* span) noexcept {
  segment* seg = segment_of(span->area);
  const unsigned first = static_cast<unsigned>(span - seg->slabs);
  const unsigned units = span->units;
  span->kind = slab_kind::unused;
  span->owner.store(nullptr, std::memory_order_relaxed);
  std::lock_guard guard(g_pool.lock);
  const std::uint64_t now = os::now_ms();
  for (unsigned u = first; u < first + units; ++u) seg->unit_freed_ms[u] = now;
  seg->used_units &= ~run_mask(first, units);
  if (!seg->in_pool_list) pool_link(seg);
}

slab* acquire_huge(std::size_t size, std::size_t alignment) noexcept {
  const std::size_t offset = alignment > kSegmentHeaderBytes ? alignment : kSegmentHeaderBytes;
  if (size > (std::size_t{1} << kAddressBits)) return nullptr;
  // Whole chunks, so no foreign mapping can share a chunk the segment map calls ours.
  const std::size_t total = (offset + size + kSegmentMask) & ~kSegmentMask;
  void* memory = os::map_aligned(total, kSegmentSize);
  if (memory == nullptr) return nullptr;
  auto* seg = new (memory) segment();
  seg->huge = true;
  seg->mapped_size = total;
  slab* span = &seg->slabs[0];
  span->area = static_cast<char*>(memory) + offset;
  span->kind = slab_kind::huge;
  span->block_size = 0;  // huge blocks report their size through the mapping
  for (slab*& entry : seg->unit_slab) entry = span;
  segment_map_set(reinterpret_cast<std::uintptr_t>(memory), total, true);
  g_pool.mapped_bytes.fetch_add(total, std::memory_order_relaxed);
  return span;
}

void release_huge(slab* span) noexcept {
  segment* seg = segment_of(span->area);
  const std::size_t total = seg->mapped_size;
  segment_map_set(reinterpret_cast<std::uintptr_t>(seg), total, false);
  g_pool.mapped_bytes.fetch_sub(total, std::memory_order_relaxed);
  os::unmap(seg, total);
}

void segment_pool_lock_for_fork() noexcept { g_pool.lock.lock(); }
void segment_pool_unlock_after_fork() noexcept { g_pool.lock.unlock(); }

std::size_t segment_bytes_mapped() noexcept {
  return g_pool.mapped_bytes.load(std::memory_order_relaxed);
}

}  // namespace slabpool::detail
