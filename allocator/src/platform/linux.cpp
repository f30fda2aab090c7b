// The Linux implementation of the platform layer (platform.hpp states the contract).
#include "platform.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <sanitizer/asan_interface.h>

#if defined(__SANITIZE_ADDRESS__)
#define SLABPOOL_PLATFORM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLABPOOL_PLATFORM_ASAN 1
#endif
#endif

extern char** environ;

namespace slabpool::detail {

std::atomic<long> g_failing_maps = 0;

namespace {

// Clears ASan's shadow of a range leaving slabpool. slabpool poisons free blocks and uncarved
// slab space, and clang 14's ASan leaves the shadow of an unmapped range as it was: the kernel
// hands the addresses to the next mmap (a thread's stack and TLS, another library's mapping),
// whose first access then reads as a use-after-poison. The shadow pages wholly inside the range
// are given back to the kernel (they read as zeros again: addressable) rather than written:
// writing them would make resident an eighth of every range slabpool unmaps whose shadow was
// never written (Arena.ReleasedMemoryIsReusedThenReturnedByTheDecay saw 4 MiB of new resident
// shadow for its 64 MiB of oversized blocks). ASan clears the partial pages at the ends. (The
// platform layer is below base/attributes.hpp, so it detects ASan itself.)
void forget_poison(void* p, std::size_t size) {
#if SLABPOOL_PLATFORM_ASAN
  std::size_t scale = 0;
  std::size_t offset = 0;
  __asan_get_shadow_mapping(&scale, &offset);
  const std::uintptr_t page = linux_os::page_size();
  const auto begin = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t end = begin + size;
  const std::uintptr_t whole_begin = (((begin >> scale) + offset) + page - 1) & ~(page - 1);
  const std::uintptr_t whole_end = ((end >> scale) + offset) & ~(page - 1);
  if (whole_begin >= whole_end) {
    ASAN_UNPOISON_MEMORY_REGION(p, size);
    return;
  }
  const std::uintptr_t inner_begin = (whole_begin - offset) << scale;
  const std::uintptr_t inner_end = (whole_end - offset) << scale;
  ASAN_UNPOISON_MEMORY_REGION(p, inner_begin - begin);
  ASAN_UNPOISON_MEMORY_REGION(reinterpret_cast<void*>(inner_end), end - inner_end);
  const int saved_errno = errno;
  madvise(reinterpret_cast<void*>(whole_begin), whole_end - whole_begin, MADV_DONTNEED);
  errno = saved_errno;
#else
  (void)p;
  (void)size;
#endif
}

// Gives [p, p + size) back to the kernel. The shadow is cleared before the call, not after:
// once unmapped, another thread may map the range and poison it.
void unmap_range(void* p, std::size_t size) {
  forget_poison(p, size);
  munmap(p, size);
}

}  // namespace

void* linux_os::map_aligned(std::size_t size, std::size_t alignment) noexcept {
  if (g_failing_maps.load(std::memory_order_relaxed) > 0) [[unlikely]] {
    if (g_failing_maps.fetch_sub(1, std::memory_order_relaxed) > 0) return nullptr;
  }
  constexpr int kProt = PROT_READ | PROT_WRITE;
  constexpr int kFlags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  const int saved_errno = errno;  // a failed mmap must not leak its errno into a successful call
  // Fast try: the kernel often hands out an already aligned range.
  void* p = mmap(nullptr, size, kProt, kFlags, -1, 0);
  if (p == MAP_FAILED) {
    errno = saved_errno;
    return nullptr;
  }
  if ((reinterpret_cast<std::uintptr_t>(p) & (alignment - 1)) == 0) return p;
  munmap(p, size);
  // Over-map by the alignment and trim both ends.
  const std::size_t span = size + alignment;
  p = mmap(nullptr, span, kProt, kFlags, -1, 0);
  if (p == MAP_FAILED) {
    errno = saved_errno;
    return nullptr;
  }
  const auto base = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t aligned = (base + alignment - 1) & ~(alignment - 1);
  if (aligned > base) munmap(p, aligned - base);
  const std::uintptr_t end = base + span;
  if (end > aligned + size) munmap(reinterpret_cast<void*>(aligned + size), end - aligned - size);
  return reinterpret_cast<void*>(aligned);
}

void linux_os::unmap(void* p, std::size_t size) noexcept {
  unmap_range(p, size);
}

void* linux_os::remap_aligned(void* p, std::size_t old_size, std::size_t new_size,
                              std::size_t alignment) noexcept {
  // Reserve an aligned range of the new size, then let the kernel move the old mapping onto its
  // head (MREMAP_FIXED replaces that part of the reservation; the rest stays as it is). Moving
  // without resizing lets kernels from 6.17 on move a range that spans several kernel mappings
  // (a block glued from cached runs, see move_pages).
  void* target = map_aligned(new_size, alignment);
  if (target == nullptr) return nullptr;
  const int saved_errno = errno;
  // The old range leaves slabpool as unmap would (see unmap_range); the caller unpoisons the
  // block at its new place.
  forget_poison(p, old_size);
  void* moved = mremap(p, old_size, old_size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  if (moved == MAP_FAILED) {
    errno = saved_errno;
    unmap(target, new_size);
    return nullptr;
  }
  return moved;
}

bool linux_os::move_pages(void* from, std::size_t size, void* to, std::size_t granule) noexcept {
  constexpr int kMove = MREMAP_MAYMOVE | MREMAP_FIXED;
  const int saved_errno = errno;
  bool whole = true;
  forget_poison(from, size);  // the range leaves slabpool: see unmap_range
  if (mremap(from, size, size, kMove, to) == MAP_FAILED) {
    // Kernels before 6.17 move one kernel mapping per call, and a run glued from pieces earlier
    // is several. Every boundary we ever make is on a granule, so each granule lies in one.
    for (std::size_t off = 0; off < size; off += granule) {
      char* source = static_cast<char*>(from) + off;
      char* target = static_cast<char*>(to) + off;
      if (mremap(source, granule, granule, kMove, target) != MAP_FAILED) continue;
      munmap(source, granule);  // its shadow went with the whole range's, above
      // A refused move may have unmapped the target already: fresh zeros fill the hole.
      if (mmap(target, granule, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED) {
        whole = false;
      }
    }
  }
  errno = saved_errno;
  return whole;
}

void linux_os::decommit(void* p, std::size_t size) noexcept {
  const int saved_errno = errno;
  madvise(p, size, MADV_DONTNEED);
  errno = saved_errno;
}

std::size_t linux_os::page_size() noexcept {
  // Read once; racing first readers store the same value (a function-local static would take
  // libstdc++'s guard, which the preload shim does not link).
  static constinit std::atomic<std::size_t> cached = 0;
  std::size_t size = cached.load(std::memory_order_relaxed);
  if (size == 0) {
    size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    cached.store(size, std::memory_order_relaxed);
  }
  return size;
}

std::uint64_t linux_os::now_ms() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

void* linux_os::loaded_symbol(const char* library, const char* name) noexcept {
  const int saved_errno = errno;
  void* symbol = nullptr;
  if (void* handle = dlopen(library, RTLD_LAZY | RTLD_NOLOAD)) {
    symbol = dlsym(handle, name);
    dlclose(handle);  // drops the reference RTLD_NOLOAD took; the library stays loaded
  }
  errno = saved_errno;
  return symbol;
}

bool linux_os::write_fd(int fd, const char* text, std::size_t left) noexcept {
  const int saved_errno = errno;
  while (left > 0) {
    const ssize_t n = ::write(fd, text, left);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      errno = saved_errno;
      return false;
    }
    text += n;
    left -= static_cast<std::size_t>(n);
  }
  errno = saved_errno;
  return true;
}

void linux_os::write_error(const char* text) noexcept {
  write_fd(STDERR_FILENO, text, std::strlen(text));
}

std::uint64_t linux_os::now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000 +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t linux_os::now_coarse_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000 +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

char** linux_os::environment() noexcept {
  return environ;
}

std::size_t linux_os::resident_bytes() noexcept {
  const int saved_errno = errno;
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    errno = saved_errno;
    return 0;
  }
  char text[128] = {};
  const ssize_t n = ::read(fd, text, sizeof(text) - 1);
  ::close(fd);
  errno = saved_errno;
  if (n <= 0) return 0;
  unsigned long long pages_total = 0, pages_resident = 0;
  if (std::sscanf(text, "%llu %llu", &pages_total, &pages_resident) != 2) return 0;
  return static_cast<std::size_t>(pages_resident) * page_size();
}

bool linux_os::thread_start(thread_handle& out, void* (*fn)(void*), const char* name) noexcept {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  const bool created = pthread_create(&out, &attr, fn, nullptr) == 0;
  pthread_attr_destroy(&attr);
  if (created && name != nullptr) pthread_setname_np(out, name);  // visible in top, ps -L
  return created;
}

void linux_os::thread_join(thread_handle& thread) noexcept {
  pthread_join(thread, nullptr);
}

void linux_os::yield() noexcept {
  sched_yield();
}

void linux_os::run_once(once_flag& flag, void (*fn)()) noexcept {
  pthread_once(&flag.once, fn);
}

bool linux_os::exit_key_create(exit_key& key, void (*fn)(void*)) noexcept {
  return pthread_key_create(&key.key, fn) == 0;
}

void linux_os::exit_key_set(exit_key& key, void* value) noexcept {
  pthread_setspecific(key.key, value);
}

void linux_os::at_fork(void (*prepare)(), void (*parent)(), void (*child)()) noexcept {
  pthread_atfork(prepare, parent, child);
}

void linux_os::wait_lock_acquire(wait_lock& lock) noexcept {
  pthread_mutex_lock(&lock.mutex);
}

void linux_os::wait_lock_release(wait_lock& lock) noexcept {
  pthread_mutex_unlock(&lock.mutex);
}

namespace {
// The condition starts on the realtime clock (its static initialiser); before the first timed
// wait it moves to the monotonic one, so a clock change cannot stretch a sleep. Only one thread
// ever sleeps on a wait_lock and signals hold the mutex, so nobody uses the condition meanwhile.
void make_monotonic(wait_lock& lock) {
  if (lock.monotonic) return;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_destroy(&lock.cond);
  pthread_cond_init(&lock.cond, &attr);
  pthread_condattr_destroy(&attr);
  lock.monotonic = true;
}
}  // namespace

void linux_os::wait_lock_sleep(wait_lock& lock) noexcept {
  make_monotonic(lock);
  pthread_cond_wait(&lock.cond, &lock.mutex);
}

void linux_os::wait_lock_sleep_ms(wait_lock& lock, std::uint64_t ms) noexcept {
  make_monotonic(lock);
  timespec deadline{};
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += static_cast<time_t>(ms / 1000);
  deadline.tv_nsec += static_cast<long>((ms % 1000) * 1000000);
  if (deadline.tv_nsec >= 1000000000) {
    deadline.tv_sec += 1;
    deadline.tv_nsec -= 1000000000;
  }
  pthread_cond_timedwait(&lock.cond, &lock.mutex, &deadline);
}

void linux_os::wait_lock_signal(wait_lock& lock) noexcept {
  pthread_cond_signal(&lock.cond);
}

void linux_os::wait_lock_reset_in_child(wait_lock& lock) noexcept {
  pthread_mutex_init(&lock.mutex, nullptr);
  lock.monotonic = false;
  pthread_cond_init(&lock.cond, nullptr);
}

}  // namespace slabpool::detail
