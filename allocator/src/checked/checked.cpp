#include "checked.hpp"

#include <cstdio>
#include <cstring>
#include <mutex>

#include "base/size_class.hpp"
#include "base/spin_lock.hpp"
#include "runtime/report.hpp"
#include "segment/segment.hpp"
#include "slabpool/detail/locks.hpp"

namespace slabpool::detail {
namespace {

constexpr unsigned char kPadByte = 0xcb;
constexpr std::uintptr_t kSizeKey = 0x5a17c0de9e3779b9;
constexpr std::uintptr_t kFreedMagic = 0xf7eeb10cdeadf7ee;
constexpr std::size_t kQuarantineSlots = 4096;
constexpr std::size_t kQuarantineBytes = 16 << 20;  // big blocks must not pin much memory
constexpr std::size_t kClaimed = ~std::size_t{0};   // `requested` of a large block being freed

// Freed blocks wait here before going back to their slab, so that a second free of the same
// pointer finds the freed marker instead of somebody else's block. The lock also serialises the
// checks, so two threads freeing one block at once cannot both pass.
struct quarantine {
  ranked<spin_lock> lock{lock_rank::quarantine};
  void* slots[kQuarantineSlots] = {};  // a ring: [oldest, oldest + count)
  std::size_t oldest = 0;
  std::size_t count = 0;
  std::size_t bytes = 0;
};
quarantine g_quarantine;

std::uintptr_t& size_word(void* block, std::size_t block_size) {
  return *reinterpret_cast<std::uintptr_t*>(static_cast<char*>(block) + block_size - 8);
}
std::uintptr_t& marker_word(void* block) {
  return *reinterpret_cast<std::uintptr_t*>(static_cast<char*>(block) + 8);
}

[[noreturn]] void report(const char* operation, const void* p, std::size_t block_size,
                         const char* format, std::size_t a = 0, std::size_t b = 0) {
  char problem[192];
  std::snprintf(problem, sizeof(problem), format, a, b);
  char text[256];
  std::snprintf(text, sizeof(text), "%s [block of the %zu-byte class]", problem, block_size);
  report_fatal(operation, p, text);
}

// First offset in [from, to) of p that does not hold the pad byte, or `to`.
std::size_t first_bad_pad(const void* p, std::size_t from, std::size_t to) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  constexpr std::uint64_t kPadWord = 0x0101010101010101ULL * kPadByte;
  std::size_t i = from;
  // Word at a time once aligned; the byte loops pin down the exact offset.
  for (; i < to && i % 8 != 0; ++i) {
    if (bytes[i] != kPadByte) return i;
  }
  for (; i + 8 <= to; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    if (word != kPadWord) break;
  }
  for (; i < to; ++i) {
    if (bytes[i] != kPadByte) return i;
  }
  return to;
}

void free_small(slab* s, void* p, std::size_t size_hint, const char* operation) {
  const std::size_t bs = s->block_size;
  const auto offset = static_cast<std::size_t>(static_cast<char*>(p) - s->area);
  if (offset % bs != 0) {
    report(operation, p, bs, "interior pointer, %zu bytes into the block at offset %zu of its slab",
           offset % bs, offset - offset % bs);
  }
  // The owner may be carving more of this slab right now (under its heap lock, not ours).
  if (offset / bs >= std::atomic_ref<std::uint32_t>(s->carved).load(std::memory_order_relaxed))
    report(operation, p, bs, "never allocated");
  if constexpr (kAsan) asan_unpoison(p, bs);
  if (marker_word(p) == (kFreedMagic ^ reinterpret_cast<std::uintptr_t>(p))) {
    report(operation, p, bs, "double free");
  }
  const std::size_t size = size_word(p, bs) ^ kSizeKey ^ reinterpret_cast<std::uintptr_t>(p);
  if (size + kCheckedTrailer > bs) {
    report(operation, p, bs, "trailer overwritten: a write past the end of the block");
  }
  if (const std::size_t bad = first_bad_pad(p, size, bs - 8); bad != bs - 8) {
    report(operation, p, bs, "write past the end of a %zu-byte block (at offset %zu)", size, bad);
  }
  if (size_hint != 0 && size_hint != size) {
    report(operation, p, bs, "sized free with size %zu, but %zu bytes were allocated", size_hint,
           size);
  }
  marker_word(p) = kFreedMagic ^ reinterpret_cast<std::uintptr_t>(p);
  if constexpr (kAsan) asan_poison(static_cast<char*>(p) + kLinkBytes, bs - kLinkBytes);
  quarantine& q = g_quarantine;
  q.slots[(q.oldest + q.count) % kQuarantineSlots] = p;
  ++q.count;
  q.bytes += bs;
  // Release the oldest blocks to their slabs until both bounds hold again.
  while (q.count > kQuarantineSlots - 1 || q.bytes > kQuarantineBytes) {
    void* evicted = q.slots[q.oldest];
    slab* es = slab_of(evicted);
    q.bytes -= es->block_size;
    q.oldest = (q.oldest + 1) % kQuarantineSlots;
    --q.count;
    remote_push(es, evicted);
  }
}

// Verifies a large or huge block under the quarantine lock and claims it: a second free of the
// same block, even one racing this one, finds the claim and is reported. The caller releases the
// lock and then frees the block (large_free may run a trim pass: never under the lock).
void claim_large(slab* s, void* p, std::size_t size_hint, const char* operation) {
  const std::size_t size = s->requested;
  if (p != s->area) report(operation, p, size, "interior pointer into a large block");
  if (size == kClaimed) report(operation, p, 0, "double free of a large block (being freed)");
  if (const std::size_t bad = first_bad_pad(p, size, size + kCheckedTrailer);
      bad != size + kCheckedTrailer) {
    report(operation, p, size, "write past the end of a %zu-byte block (at offset %zu)", size, bad);
  }
  if (size_hint != 0 && size_hint != size) {
    report(operation, p, size, "sized free with size %zu, but %zu bytes were allocated", size_hint,
           size);
  }
  s->requested = kClaimed;
}

}  // namespace

unsigned checked_class(unsigned cls, std::size_t size) noexcept {
  std::size_t alignment = class_size(cls) & (~class_size(cls) + 1);  // lowest set bit
  if (alignment > kUnitSize) alignment = kUnitSize;
  unsigned c = cls;
  while (c < kClassCount &&
         (class_size(c) < size + kCheckedTrailer || class_size(c) % alignment != 0)) {
    ++c;
  }
  return c;
}

std::size_t checked_large_alignment(unsigned cls) noexcept {
  const std::size_t alignment = class_size(cls) & (~class_size(cls) + 1);
  return alignment < kMinAlignment ? kMinAlignment : alignment;
}

void* checked_init_small(void* p, unsigned cls, std::size_t size) noexcept {
  const std::size_t bs = class_size(cls);
  marker_word(p) = 0;  // a reused block must not look freed
  std::memset(static_cast<char*>(p) + size, kPadByte, bs - 8 - size);
  size_word(p, bs) = size ^ kSizeKey ^ reinterpret_cast<std::uintptr_t>(p);
  // Under ASan the pad is poisoned too (an overflow is reported at the faulty write); the size
  // word stays readable for usable_size.
  if constexpr (kAsan) asan_poison(static_cast<char*>(p) + size, bs - 8 - size);
  return p;
}

void checked_large_init(slab* s, void* p, std::size_t size) noexcept {
  s->requested = size;
  std::memset(static_cast<char*>(p) + size, kPadByte, kCheckedTrailer);
}

slab* checked_free(void* p, std::size_t size_hint, const char* operation) noexcept {
  if (p == nullptr) return nullptr;
  verify_ours(p, operation);
  slab* s = slab_of(p);
  std::lock_guard guard(g_quarantine.lock);
  switch (s->kind) {
    case slab_kind::small:
      free_small(s, p, size_hint, operation);
      return nullptr;
    case slab_kind::large:
    case slab_kind::huge:
      claim_large(s, p, size_hint, operation);
      return s;  // freed by the caller once the quarantine lock is released
    case slab_kind::unused:
      break;
  }
  report_fatal(operation, p, "double free or never allocated (its span is free)");
}

void verify_ours(const void* p, const char* operation) noexcept {
  // The segment map answers before p's segment header is read: that read faults when the memory
  // below a foreign pointer is not mapped.
  if (!segment_map_contains(p) || (reinterpret_cast<std::uintptr_t>(p) & kSegmentMask) == 0) {
    report_fatal(operation, p, "not a block slabpool handed out (outside its memory)");
  }
}

void quarantine_lock_for_fork() noexcept {
  g_quarantine.lock.raw().lock();
}
void quarantine_unlock_after_fork() noexcept {
  g_quarantine.lock.raw().unlock();
}

std::size_t checked_usable_size(const void* p) noexcept {
  verify_ours(p, "usable_size");
  slab* s = slab_of(p);
  if (s->kind != slab_kind::small) return s->requested;
  void* block = const_cast<void*>(p);
  return size_word(block, s->block_size) ^ kSizeKey ^ reinterpret_cast<std::uintptr_t>(p);
}

}  // namespace slabpool::detail
