// The slab layer's slow paths: formatting a span as a slab, refilling its staged list, and the
// remote push.
#include "slab.hpp"

#include <algorithm>

namespace slabpool::detail {
namespace {

// Carving writes a link into every block it stages, so it makes their pages resident. A carve
// stages the blocks that start before the next page boundary, and at least four (up to
// kCarveBytes): a class a thread barely uses pins a page, not a 16 KiB batch. With twenty classes
// a thread typically touches, the batches left a good part of a thread's memory staged and never
// used (issue 12: RSS / live at 64 threads 2.66 with 16 KiB batches, 1.99 with this rule). Loops
// that cycle through a page of blocks refill inline (front.hpp, pop_after_miss), so the shorter
// cycles cost fewer instructions per pair than the old batches' calls did (scripts/inscount).
constexpr std::size_t kCarvePage = 4096;
constexpr std::size_t kCarveBytes = 16 * 1024;
constexpr std::size_t kCarveMinBlocks = 4;

std::uint32_t carve_batch(std::uint32_t carved, std::size_t size) {
  const std::size_t start = std::size_t{carved} * size;
  const std::size_t page_end = (start + kCarvePage) & ~(kCarvePage - 1);
  const std::size_t to_page_end = (page_end - start + size - 1) / size;
  const std::size_t at_least =
      size >= kCarveBytes ? 1 : std::min(kCarveMinBlocks, kCarveBytes / size);
  return static_cast<std::uint32_t>(std::max(to_page_end, at_least));
}

}  // namespace

void slab_format(slab* s, unsigned cls, std::size_t block_size, heap* owner) noexcept {
  s->block_size = static_cast<std::uint32_t>(block_size);
  s->capacity = static_cast<std::uint32_t>((std::size_t{s->units} << kUnitShift) / block_size);
  std::atomic_ref<std::uint32_t>(s->carved).store(0, std::memory_order_relaxed);
  s->free = nullptr;
  s->local_free = nullptr;
  s->local_count.store(0, std::memory_order_relaxed);
  s->remote.store(0, std::memory_order_relaxed);
  s->class_index = static_cast<std::uint8_t>(cls);
  s->kind = slab_kind::small;
  s->seen_empty = false;
  s->owner.store(owner, std::memory_order_release);
  // Nothing in a new slab is a block yet; carving unpoisons the link words it writes.
  if constexpr (kAsan) asan_poison(s->area, std::size_t{s->units} << kUnitShift);
}

bool slab_carve(slab* s) noexcept {
  if (s->carved == s->capacity) return false;
  const std::uint32_t batch_max = carve_batch(s->carved, s->block_size);
  const std::uint32_t left = s->capacity - s->carved;
  const std::uint32_t batch = left < batch_max ? left : batch_max;
  char* first = s->area + std::size_t{s->carved} * s->block_size;
  if constexpr (kAsan) {
    for (std::uint32_t i = 0; i < batch; ++i) {
      asan_unpoison(first + std::size_t{i} * s->block_size, kLinkBytes);
    }
  }
  // Link in address order so consecutive allocations walk memory forwards.
  for (std::uint32_t i = 0; i + 1 < batch; ++i) {
    set_next_block(reinterpret_cast<free_block*>(first + std::size_t{i} * s->block_size),
                   reinterpret_cast<free_block*>(first + std::size_t{i + 1} * s->block_size));
  }
  set_next_block(reinterpret_cast<free_block*>(first + std::size_t{batch - 1} * s->block_size),
                 nullptr);
  s->free = reinterpret_cast<free_block*>(first);
  // Atomic (relaxed) only for checked mode, which reads `carved` without the heap lock to tell a
  // never-allocated block from a freed one.
  std::atomic_ref<std::uint32_t>(s->carved).store(s->carved + batch, std::memory_order_relaxed);
  return true;
}

void slab_unstage(slab* s) noexcept {
  if (s->free == nullptr) return;
  free_block* tail = s->free;
  std::uint32_t n = 1;
  for (; next_block(tail) != nullptr; tail = next_block(tail)) ++n;
  set_next_block(tail, s->local_free);
  s->local_free = s->free;
  s->free = nullptr;
  s->local_count.store(s->local_count.load(std::memory_order_relaxed) + n,
                       std::memory_order_relaxed);
}

void remote_push(slab* s, void* p) noexcept {
  // Pushing alone is ABA-safe because the owner only ever takes the whole list.
  auto* b = static_cast<free_block*>(p);
  std::uintptr_t old = s->remote.load(std::memory_order_relaxed);
  std::uintptr_t desired;
  do {
    set_next_block(b, remote_list::head(old));
    desired = ((std::uintptr_t{remote_list::count(old)} + 1) << remote_list::kCountShift) |
              reinterpret_cast<std::uintptr_t>(b);
  } while (!s->remote.compare_exchange_weak(old, desired, std::memory_order_release,
                                            std::memory_order_relaxed));
}

}  // namespace slabpool::detail
