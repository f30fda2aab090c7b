// Blocks aligned beyond the core's kMaxAlignment (memalign(8 MiB, n) and the like, which glibc
// serves). Each gets a mapping of its own, outside the segment map:
//
//   [header page][gap given back to the OS ...][block: alignment-aligned, page-rounded]
//   ^ base, aligned to `alignment`              ^ base + alignment
//
// The header page records the block and links it into a registry that free() searches only for
// pointers outside the segment map, so normal frees never pay for it. Such blocks are rare and
// big: a lock and a list are enough.
#include <cerrno>
#include <cstdint>
#include <mutex>
#include <new>

#include "os.hpp"
#include "shim.hpp"
#include "slabpool/detail/locks.hpp"
#include "spin_lock.hpp"

namespace slabpool::preload {
namespace {

using detail::os;

struct overaligned_block {
  overaligned_block* next;
  overaligned_block* prev;
  char* user;              // what the caller got: base + alignment
  std::size_t user_bytes;  // mapped at `user`, a page multiple
};

// The registry: a doubly linked list of header pages. The lock is a leaf (nothing else is taken
// under it, and mapping and unmapping happen outside it); its rank is `overaligned`.
constinit detail::ranked<detail::spin_lock> g_lock{detail::lock_rank::overaligned};
constinit overaligned_block* g_blocks = nullptr;

// Unlinks and returns the block whose user pointer is p, or nullptr. Caller holds g_lock.
overaligned_block* take(const void* p) {
  for (overaligned_block* b = g_blocks; b != nullptr; b = b->next) {
    if (b->user != p) continue;
    if (b->prev != nullptr)
      b->prev->next = b->next;
    else
      g_blocks = b->next;
    if (b->next != nullptr) b->next->prev = b->prev;
    return b;
  }
  return nullptr;
}

}  // namespace

void* overaligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  const std::size_t page = os::page_size();
  // Past 2^47 no address space could hold it; this also keeps the sums below from overflowing.
  constexpr std::size_t kLimit = std::size_t{1} << detail::kAddressBits;
  if (size > kLimit || alignment > kLimit) {
    errno = ENOMEM;
    return nullptr;
  }
  const std::size_t user_bytes = size == 0 ? page : (size + page - 1) & ~(page - 1);
  char* base = static_cast<char*>(os::map_aligned(alignment + user_bytes, alignment));
  if (base == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  // Only the header page and the block stay mapped; the gap's address space goes back.
  os::unmap(base + page, alignment - page);
  auto* block = new (base) overaligned_block{nullptr, nullptr, base + alignment, user_bytes};
  std::lock_guard guard(g_lock);
  block->next = g_blocks;
  if (g_blocks != nullptr) g_blocks->prev = block;
  g_blocks = block;
  return block->user;
}

std::size_t overaligned_usable_size(const void* p) noexcept {
  std::lock_guard guard(g_lock);
  for (const overaligned_block* b = g_blocks; b != nullptr; b = b->next) {
    if (b->user == p) return b->user_bytes;
  }
  return 0;
}

bool overaligned_free(void* p) noexcept {
  overaligned_block* block;
  {
    std::lock_guard guard(g_lock);
    block = take(p);
  }
  if (block == nullptr) return false;
  os::unmap(block->user, block->user_bytes);
  os::unmap(block, os::page_size());
  return true;
}

void overaligned_lock_for_fork() noexcept {
  g_lock.raw().lock();
}
void overaligned_unlock_after_fork() noexcept {
  g_lock.raw().unlock();
}

}  // namespace slabpool::preload
