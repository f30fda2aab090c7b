// The OS layer: the only code that maps, unmaps or advises memory. Everything above it is portable
// C++. The `platform` concept states the contract; `os` is the implementation in use.
#pragma once

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>

namespace slabpool::detail {

template <class P>
concept platform = requires(void* p, std::size_t n, const char* text) {
  // Maps n bytes (a multiple of the page size) aligned to `alignment` (a power of two), readable,
  // writable and zero-filled; nullptr when the OS refuses. Never calls malloc.
  { P::map_aligned(n, n) } -> std::same_as<void*>;
  // Unmaps a range returned by map_aligned (or a page-aligned part of one).
  { P::unmap(p, n) } -> std::same_as<void>;
  // Gives the physical pages of a page-aligned range back; the range stays mapped and reads back
  // as zeros on next touch.
  { P::decommit(p, n) } -> std::same_as<void>;
  // The page size, read once.
  { P::page_size() } -> std::same_as<std::size_t>;
  // Monotonic milliseconds; cheap (vDSO coarse clock).
  { P::now_ms() } -> std::same_as<std::uint64_t>;
  // Writes text to stderr without allocating.
  { P::write_error(text) } -> std::same_as<void>;
};

// Test-only fault injection: while positive, each map_aligned call fails and decrements it.
extern std::atomic<long> g_failing_maps;

struct linux_os {
  static void* map_aligned(std::size_t size, std::size_t alignment) noexcept;
  static void unmap(void* p, std::size_t size) noexcept;
  static void decommit(void* p, std::size_t size) noexcept;
  static std::size_t page_size() noexcept;
  static std::uint64_t now_ms() noexcept;
  static void write_error(const char* text) noexcept;
};

static_assert(platform<linux_os>);
using os = linux_os;

}  // namespace slabpool::detail
