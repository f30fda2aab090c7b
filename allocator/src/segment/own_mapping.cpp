#include "own_mapping.hpp"

#include <mutex>
#include <new>

#include "platform/platform.hpp"

namespace slabpool::detail {
namespace {

constexpr std::uintptr_t kOwnMappingTag = 0x5ab1'9001'a7e4'a000;
// Past these no address space could hold the block; refusing them keeps the sums below exact.
constexpr std::size_t kMaxBytes = std::size_t{1} << 56;
constexpr std::size_t kMaxAlignmentOwn = std::size_t{1} << 40;

own_mapping* record_of(void* block) {
  return reinterpret_cast<own_mapping*>(static_cast<char*>(block) - sizeof(own_mapping));
}

constinit ranked<spin_lock> g_registry_lock{lock_rank::own_mappings};
constinit own_mapping* g_registry = nullptr;

}  // namespace

char* own_mapping::block() const noexcept {
  return map_base + os::page_size();
}

std::size_t own_mapping::block_bytes() const noexcept {
  return map_bytes - os::page_size();
}

own_mapping* own_mapping_create(std::size_t bytes, std::size_t alignment) noexcept {
  if (bytes > kMaxBytes || alignment > kMaxAlignmentOwn) return nullptr;
  const std::size_t page = os::page_size();
  const std::size_t body = bytes == 0 ? page : (bytes + page - 1) & ~(page - 1);
  // The block goes `lead` bytes into a mapping aligned to `lead`; of the lead only the record page
  // right below the block stays mapped.
  const std::size_t lead = alignment > page ? alignment : page;
  char* start = static_cast<char*>(os::map_aligned(lead + body, lead));
  if (start == nullptr) return nullptr;
  char* block = start + lead;
  if (lead > page) os::unmap(start, lead - page);
  return new (record_of(block))
      own_mapping{nullptr,
                  nullptr,
                  block - page,
                  page + body,
                  bytes,
                  alignment,
                  reinterpret_cast<std::uintptr_t>(block) ^ kOwnMappingTag};
}

void own_mapping_destroy(own_mapping* m) noexcept {
  char* const base = m->map_base;  // read before the unmap takes the record away
  const std::size_t size = m->map_bytes;
  os::unmap(base, size);
}

own_mapping* own_mapping_at(void* p) noexcept {
  own_mapping* m = record_of(p);
  return m->tag == (reinterpret_cast<std::uintptr_t>(p) ^ kOwnMappingTag) ? m : nullptr;
}

void own_mapping_push(own_mapping*& head, own_mapping* m) noexcept {
  m->prev = nullptr;
  m->next = head;
  if (head != nullptr) head->prev = m;
  head = m;
}

void own_mapping_remove(own_mapping*& head, own_mapping* m) noexcept {
  (m->prev != nullptr ? m->prev->next : head) = m->next;
  if (m->next != nullptr) m->next->prev = m->prev;
  m->prev = m->next = nullptr;
}

bool own_mapping_listed(own_mapping* const& head, const own_mapping* m) noexcept {
  return (m->prev == nullptr ? head : m->prev->next) == m;
}

void own_mapping_register(own_mapping* m) noexcept {
  std::lock_guard guard(g_registry_lock);
  own_mapping_push(g_registry, m);
}

own_mapping* own_mapping_unregister(const void* p) noexcept {
  std::lock_guard guard(g_registry_lock);
  // A list walk, not own_mapping_at: p may be any pointer (nothing below it need be mapped).
  for (own_mapping* m = g_registry; m != nullptr; m = m->next) {
    if (m->block() != p) continue;
    own_mapping_remove(g_registry, m);
    return m;
  }
  return nullptr;
}

std::size_t own_mapping_registered_size(const void* p) noexcept {
  std::lock_guard guard(g_registry_lock);
  for (const own_mapping* m = g_registry; m != nullptr; m = m->next) {
    if (m->block() == p) return m->block_bytes();
  }
  return 0;
}

void own_mapping_lock_for_fork() noexcept {
  g_registry_lock.raw().lock();
}
void own_mapping_unlock_after_fork() noexcept {
  g_registry_lock.raw().unlock();
}

}  // namespace slabpool::detail
