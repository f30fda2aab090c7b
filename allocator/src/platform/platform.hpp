// The platform layer: the only code in slabpool that talks to the OS. Everything above it is
// portable C++ (scripts/check-structure fails the build's tests when an OS call or OS header
// appears anywhere else).
//
// The `platform` concept states the contract every port must meet; `os` is the one in use. None
// of these functions ever calls malloc: the allocator uses them from inside its own slow paths,
// before main and after exit has started.
#pragma once

#include <pthread.h>

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>

namespace slabpool::detail {

// A once-only initialiser, constant-initialised (no constructor runs before first use).
struct once_flag {
  pthread_once_t once = PTHREAD_ONCE_INIT;
};

// A lock with a condition to sleep on, for the one thread that sleeps (the background trimmer).
// Constant-initialised; `reset_in_child` makes it usable again in a forked child whose copy may
// have been held by a thread that does not exist there.
struct wait_lock {
  pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
  bool monotonic = false;  // cond waits on CLOCK_MONOTONIC once prepared
};

// A sleeping lock for the core's slow paths (BasicLockable, constant-initialised). Not
// std::mutex: its lock() may throw, which ties every program the preload shim goes into to
// libstdc++'s exception support (about 1.3 MiB of resident memory in a C program, issue 12).
class os_mutex {
 public:
  constexpr os_mutex() = default;
  os_mutex(const os_mutex&) = delete;
  os_mutex& operator=(const os_mutex&) = delete;
  void lock() noexcept { pthread_mutex_lock(&mutex_); }
  bool try_lock() noexcept { return pthread_mutex_trylock(&mutex_) == 0; }
  void unlock() noexcept { pthread_mutex_unlock(&mutex_); }

 private:
  pthread_mutex_t mutex_ = PTHREAD_MUTEX_INITIALIZER;
};

// A thread-exit notification key: a function run with a per-thread value when the thread exits.
struct exit_key {
  pthread_key_t key = 0;
};

using thread_handle = pthread_t;

template <class P>
concept platform = requires(void* p, std::size_t n, const char* text, int fd, wait_lock& wl,
                            once_flag& once, exit_key& key, thread_handle& thread) {
  // --- memory --------------------------------------------------------------------------------
  // Maps n bytes (a multiple of the page size) aligned to `alignment` (a power of two), readable,
  // writable and zero-filled; nullptr when the OS refuses (errno left unchanged).
  { P::map_aligned(n, n) } -> std::same_as<void*>;
  // Unmaps a range returned by map_aligned (or a page-aligned part of one).
  { P::unmap(p, n) } -> std::same_as<void>;
  // Moves the mapping [p, p + old) to a new place aligned to `alignment` and n bytes long (n >
  // old): its pages move with it (no copy, no fault), the rest reads as zeros. Returns the new
  // address, or nullptr with the old mapping untouched.
  { P::remap_aligned(p, n, n, n) } -> std::same_as<void*>;
  // Moves the pages of [p, p + n) onto [q, q + n), a mapped range of ours (both aligned to the
  // granule, n a multiple of it): no copy, no fault. The source is unmapped afterwards, even where
  // it spanned several kernel mappings. A granule the kernel refuses to move reads as zeros at the
  // destination instead (its contents are lost: callers move free memory only). false when the
  // destination could not be kept mapped whole; the caller then unmaps it.
  { P::move_pages(p, n, p, n) } -> std::same_as<bool>;
  // Gives the physical pages of a page-aligned range back; the range stays mapped and reads back
  // as zeros on next touch (errno left unchanged).
  { P::decommit(p, n) } -> std::same_as<void>;
  // The page size, read once.
  { P::page_size() } -> std::same_as<std::size_t>;
  // Bytes of this process that are resident in physical memory; 0 when unknown.
  { P::resident_bytes() } -> std::same_as<std::size_t>;
  // --- time ----------------------------------------------------------------------------------
  // Monotonic milliseconds; cheap (the vDSO's coarse clock, a few ms of resolution).
  { P::now_ms() } -> std::same_as<std::uint64_t>;
  // Monotonic nanoseconds at full resolution (for wait times and deadlines).
  { P::now_ns() } -> std::same_as<std::uint64_t>;
  // Monotonic nanoseconds at the coarse clock's resolution (a few ms), as cheap as now_ms.
  { P::now_coarse_ns() } -> std::same_as<std::uint64_t>;
  // --- environment and output ----------------------------------------------------------------
  // The process's environment (`NAME=value` strings, null-terminated array; may be nullptr).
  { P::environment() } -> std::same_as<char**>;
  // Writes all of `text` (n bytes) to fd, retrying short writes and EINTR; false on error.
  { P::write_fd(fd, text, n) } -> std::same_as<bool>;
  // --- the dynamic loader --------------------------------------------------------------------
  // The address of symbol `name` in the shared library `library` when that library is loaded
  // (by the program, or since by anything it opened, globally or not), else nullptr. Loads
  // nothing. May allocate (the loader's error text): never call it holding an allocator lock.
  { P::loaded_symbol(text, text) } -> std::same_as<void*>;
  // --- threads -------------------------------------------------------------------------------
  // Starts fn(nullptr) on a new thread with a small stack and the given name; false on failure.
  // May allocate (the new thread's TLS): never call it holding an allocator lock.
  { P::thread_start(thread, static_cast<void* (*)(void*)>(nullptr), text) } -> std::same_as<bool>;
  { P::thread_join(thread) } -> std::same_as<void>;
  // Gives the CPU to another thread (a spinning lock's holder may be preempted).
  { P::yield() } -> std::same_as<void>;
  // Runs fn once per process, however many threads call it at once.
  { P::run_once(once, static_cast<void (*)()>(nullptr)) } -> std::same_as<void>;
  // Creates a key whose destructor fn(value) runs at the exit of each thread that set a value.
  { P::exit_key_create(key, static_cast<void (*)(void*)>(nullptr)) } -> std::same_as<bool>;
  { P::exit_key_set(key, p) } -> std::same_as<void>;
  // Registers handlers run around fork() (before; after in the parent; after in the child).
  {
    P::at_fork(static_cast<void (*)()>(nullptr), static_cast<void (*)()>(nullptr),
               static_cast<void (*)()>(nullptr))
    } -> std::same_as<void>;
  // --- the sleeping lock ---------------------------------------------------------------------
  { P::wait_lock_acquire(wl) } -> std::same_as<void>;
  { P::wait_lock_release(wl) } -> std::same_as<void>;
  // Sleeps until signalled (releasing the lock meanwhile), or at most `ms` milliseconds.
  { P::wait_lock_sleep(wl) } -> std::same_as<void>;
  { P::wait_lock_sleep_ms(wl, std::uint64_t{}) } -> std::same_as<void>;
  { P::wait_lock_signal(wl) } -> std::same_as<void>;
  { P::wait_lock_reset_in_child(wl) } -> std::same_as<void>;
};

// Test-only fault injection: while positive, each map_aligned call fails and decrements it.
extern std::atomic<long> g_failing_maps;

struct linux_os {
  static void* map_aligned(std::size_t size, std::size_t alignment) noexcept;
  static void unmap(void* p, std::size_t size) noexcept;
  static void* remap_aligned(void* p, std::size_t old_size, std::size_t new_size,
                             std::size_t alignment) noexcept;
  static bool move_pages(void* from, std::size_t size, void* to, std::size_t granule) noexcept;
  static void decommit(void* p, std::size_t size) noexcept;
  static std::size_t page_size() noexcept;
  static std::size_t resident_bytes() noexcept;
  static std::uint64_t now_ms() noexcept;
  static std::uint64_t now_ns() noexcept;
  static std::uint64_t now_coarse_ns() noexcept;
  static char** environment() noexcept;
  static bool write_fd(int fd, const char* text, std::size_t size) noexcept;
  static void* loaded_symbol(const char* library, const char* name) noexcept;
  static bool thread_start(thread_handle& out, void* (*fn)(void*), const char* name) noexcept;
  static void thread_join(thread_handle& thread) noexcept;
  static void yield() noexcept;
  static void run_once(once_flag& flag, void (*fn)()) noexcept;
  static bool exit_key_create(exit_key& key, void (*fn)(void*)) noexcept;
  static void exit_key_set(exit_key& key, void* value) noexcept;
  static void at_fork(void (*prepare)(), void (*parent)(), void (*child)()) noexcept;
  static void wait_lock_acquire(wait_lock& lock) noexcept;
  static void wait_lock_release(wait_lock& lock) noexcept;
  static void wait_lock_sleep(wait_lock& lock) noexcept;
  static void wait_lock_sleep_ms(wait_lock& lock, std::uint64_t ms) noexcept;
  static void wait_lock_signal(wait_lock& lock) noexcept;
  static void wait_lock_reset_in_child(wait_lock& lock) noexcept;

  // Writes a NUL-terminated text to stderr (fd 2), without allocating.
  static void write_error(const char* text) noexcept;
};

static_assert(platform<linux_os>);
using os = linux_os;

}  // namespace slabpool::detail
