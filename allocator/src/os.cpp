#include "os.hpp"

#include "slabpool/testing.h"

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace slabpool::detail {

std::atomic<long> g_failing_maps = 0;

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
  munmap(p, size);
}

void linux_os::decommit(void* p, std::size_t size) noexcept {
  const int saved_errno = errno;
  madvise(p, size, MADV_DONTNEED);
  errno = saved_errno;
}

std::size_t linux_os::page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

std::uint64_t linux_os::now_ms() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

void linux_os::write_error(const char* text) noexcept {
  std::size_t left = std::strlen(text);
  while (left > 0) {
    const ssize_t n = write(STDERR_FILENO, text, left);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;
    }
    text += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace slabpool::detail

extern "C" SLABPOOL_API void sp_testing_fail_maps(long count) {
  slabpool::detail::g_failing_maps.store(count < 0 ? 0 : count, std::memory_order_relaxed);
}
