// The slow paths behind the front door's fast paths: where an allocation or a free goes when the
// current slab has nothing staged, the block is another thread's or a large one, or checked mode
// is on. Each path is one function that reads top to bottom and calls down into the layers:
//
//   alloc_slow:  (after the inline local-list swap missed) thread start (process) -> checked mode
//                (checked) -> clock check (trim) -> find a slab under the heap lock (heap) -> pop
//                (slab)
//   free_slow:   checked mode (checked) -> remote push (slab) | large free (large)
//
// and the one out-of-memory rule, shared by all of them: attempt_or_trim.

#include "checked/checked.hpp"
#include "front.hpp"
#include "heap/heap_registry.hpp"
#include "large/large.hpp"
#include "trim/trim.hpp"

namespace slabpool::detail {
namespace {

// A lock guard for attempts that hold no lock.
struct no_lock {
  void lock() noexcept {}
  void unlock() noexcept {}
};

// Holds `lock` for its scope; attempt_or_trim drops and retakes it around a pass. Not
// std::unique_lock: its ownership checks throw std::system_error, which clang leaves in the code
// and which would tie the core (and the preload shim) to libstdc++.
template <class Lock>
class relockable_guard {
 public:
  explicit relockable_guard(Lock& lock) noexcept : lock_(lock) { lock_.lock(); }
  relockable_guard(const relockable_guard&) = delete;
  relockable_guard& operator=(const relockable_guard&) = delete;
  ~relockable_guard() { lock_.unlock(); }
  void lock() noexcept { lock_.lock(); }
  void unlock() noexcept { lock_.unlock(); }

 private:
  Lock& lock_;
};

// The one out-of-memory rule: when an attempt finds no memory, give back everything idle (every
// heap's empty slabs and surplus, empty segments, cached huge blocks: a forced trim pass frees
// address space too) and try once more, looking harder (`retry` = true). The caller's lock is
// dropped around the pass, which takes heap locks itself.
template <class Attempt, class Guard>
auto attempt_or_trim(Attempt attempt, Guard& guard) noexcept {
  auto result = attempt(false);
  if (result != nullptr) [[likely]]
    return result;
  guard.unlock();
  trim_pass(true);
  guard.lock();
  return attempt(true);
}

// A block of class `cls` (or, in checked mode, the class checked mode picks) that leaves every
// slab non-current, so the fast paths keep missing: the source of blocks in checked mode and for
// threads past their exit (the shared heap). nullptr with ENOMEM.
SLABPOOL_NOINLINE void* alloc_unstaged(heap* h, unsigned cls, std::size_t size) noexcept {
  unsigned c = cls;
  if (g_checked) {
    c = checked_class(cls, size);
    if (c == kClassCount) return large_alloc(size, checked_large_alignment(cls), false);
  }
  trim_on_slow_path();
  void* p;
  {
    relockable_guard guard(h->lock);
    p = attempt_or_trim([&](bool retry) { return heap_pop_unstaged(h, c, retry); }, guard);
  }
  if (p == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  return g_checked ? checked_init_small(p, c, size) : p;
}

// Frees p in checked mode: verified (and reported) by the checked layer; a large block it claims
// is freed here, with no lock held.
void checked_release(void* p, std::size_t size_hint, const char* operation) noexcept {
  if (slab* s = checked_free(p, size_hint, operation)) {
    trim_on_slow_path();
    large_free(s);
  }
}

// One large block, with the out-of-memory retry; errno untouched on success, ENOMEM on failure.
void* large_alloc_retrying(std::size_t size, std::size_t alignment, bool zero) noexcept {
  if (size > (std::size_t{1} << kAddressBits)) {
    errno = ENOMEM;
    return nullptr;
  }
  const int saved_errno = errno;
  no_lock none;
  void* p = attempt_or_trim([&](bool) { return large_alloc_once(size, alignment, zero); }, none);
  errno = p != nullptr ? saved_errno : ENOMEM;
  return p;
}

}  // namespace

void* alloc_slow(heap* h, unsigned cls, std::size_t size) noexcept {
  // (The commonest refill, the owner's frees into the current slab, was tried inline:
  // pop_after_miss.)
  if (h == &g_empty_heap) {
    if (thread_exited()) [[unlikely]]
      return alloc_unstaged(heap_shared(), cls, size);
    h = thread_heap_create();
    if (h == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
  }
  if (g_checked) [[unlikely]]
    return alloc_unstaged(h, cls, size);
  trim_on_slow_path();
  slab* s;
  {
    // The owner's refill: the commonest lock of all (every few blocks of a big class). It keeps
    // the hierarchy's books only where the order is asserted (debug builds): in release builds
    // nothing under it can start a pass or take a lock of lower rank, and the books would cost
    // the refill-bound patterns an instruction per block.
    relockable_guard guard(h->lock.owner_refill());
    s = attempt_or_trim([&](bool retry) { return heap_find_slab(h, cls, retry); }, guard);
    if (s == nullptr) [[unlikely]] {
      errno = ENOMEM;
      return nullptr;
    }
    set_current(h, cls, s);
  }
  return slab_pop(s, s->free);
}

void free_slow(slab* s, void* p, std::size_t size_hint) noexcept {
  if (g_checked) [[unlikely]]
    return checked_release(p, size_hint, "free");
  switch (s->kind) {
    case slab_kind::small:
      // Another thread's slab, or an abandoned one.
      if constexpr (kAsan)
        asan_poison(static_cast<char*>(p) + kLinkBytes, s->block_size - kLinkBytes);
      remote_push(s, p);
      return;
    case slab_kind::large:
    case slab_kind::huge:
      trim_on_slow_path();
      large_free(s);
      return;
    case slab_kind::unused:
      break;
  }
  report_fatal("free", p,
               "not an allocated block (double free of a large block, or a stray pointer)");
}

void free_null_or_invalid(slab*, void* p, std::size_t size_hint) noexcept {
  if (p == nullptr) return;
  if (g_checked) return checked_release(p, size_hint, "free");
  report_fatal("free", p, "not a block slabpool handed out (segment-aligned address)");
}

void* large_alloc(std::size_t size, std::size_t alignment, bool zero) noexcept {
  process_start();  // the first block of a program may be a large one
  trim_on_slow_path();
  if (g_checked) [[unlikely]] {
    if (size > (std::size_t{1} << kAddressBits)) {
      errno = ENOMEM;
      return nullptr;
    }
    void* p = large_alloc_retrying(size + kCheckedTrailer, alignment, zero);
    if (p != nullptr) checked_large_init(slab_of(p), p, size);
    return p;
  }
  return large_alloc_retrying(size, alignment, zero);
}

own_mapping* own_mapping_new(std::size_t bytes, std::size_t alignment) noexcept {
  no_lock none;
  return attempt_or_trim([&](bool) { return own_mapping_create(bytes, alignment); }, none);
}

void* resize_big_block(void* p, std::size_t size) noexcept {
  return large_resize(p, size);
}

std::size_t block_usable_size(const void* p) noexcept {
  if (g_checked) [[unlikely]]
    return checked_usable_size(p);
  const slab* s = slab_of(p);
  switch (s->kind) {
    case slab_kind::small:
      return s->block_size;
    case slab_kind::large:
    case slab_kind::huge:
      return large_usable_size(s, p);
    case slab_kind::unused:
      break;
  }
  return 0;
}

}  // namespace slabpool::detail
