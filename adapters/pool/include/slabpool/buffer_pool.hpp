// slabpool — byte-buffer pools with a cap: the golang/go#23199 trap closed.
//
//   slabpool::buffer_pool pool;                // cap 64 KiB by default
//   {
//     auto buf = pool.get(4096);               // empty buffer, capacity >= 4096
//     buf->append("{\"id\":");
//   }                                          // cached again, unless it grew above the cap
//
// The buffer is slabpool::byte_buffer, not std::pmr::vector<std::byte>: resize() leaves new bytes
// uninitialised (a vector would zero them every time a pooled buffer is refilled), it carries no
// resource pointer, and its capacity is the whole slabpool block (sp_usable_size), so a request
// for 1000 bytes may get a little more room for free.
//
// Capacity classes are powers of two from `min_capacity` up. get(n) takes a buffer of the class
// that covers n; put(b) caches b in the largest class its capacity covers, and *drops* (frees, and
// counts) any buffer whose capacity is above the cap, so one huge request cannot pin a huge buffer
// in the pool. The cap is set, or calibrated from the sizes get() was asked for (a percentile over
// a window of requests). Every class is an object pool of its own: per-thread caches, stealing,
// trim epochs, stats; all as in pool.hpp.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <span>
#include <string_view>
#include <utility>

#include "slabpool/pool.hpp"
#include "slabpool/slabpool.h"

namespace slabpool {

// A growable byte buffer in slabpool memory. Move-only.
class byte_buffer {
 public:
  byte_buffer() noexcept = default;
  // An empty buffer with room for at least `capacity` bytes; throws std::bad_alloc.
  explicit byte_buffer(std::size_t capacity) { reserve(capacity); }
  byte_buffer(byte_buffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        capacity_(std::exchange(o.capacity_, 0)) {}
  // Frees this buffer's memory and takes `o`'s. Never fails.
  byte_buffer& operator=(byte_buffer&& o) noexcept {
    if (this != &o) {
      sp_free(data_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      capacity_ = std::exchange(o.capacity_, 0);
    }
    return *this;
  }
  ~byte_buffer() { sp_free(data_); }

  std::byte* data() noexcept { return data_; }
  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return size_ == 0; }
  std::span<std::byte> span() noexcept { return {data_, size_}; }
  // The contents as characters (valid until the next change).
  std::string_view view() const noexcept { return {reinterpret_cast<const char*>(data_), size_}; }

  // Size 0, capacity kept. Never fails.
  void clear() noexcept { size_ = 0; }
  // Capacity at least n, contents kept (grows at least 2x); throws std::bad_alloc, buffer intact.
  void reserve(std::size_t n) {
    if (n <= capacity_) return;
    const std::size_t want = n > 2 * capacity_ ? n : 2 * capacity_;
    void* p = sp_realloc(data_, want);
    if (p == nullptr) throw std::bad_alloc();
    data_ = static_cast<std::byte*>(p);
    capacity_ = sp_usable_size(p);
  }
  // Size n; new bytes are uninitialised. Throws std::bad_alloc, buffer intact.
  void resize(std::size_t n) {
    reserve(n);
    size_ = n;
  }
  // Appends n bytes, which may lie in this buffer itself (b.append(b.view())); throws
  // std::bad_alloc, buffer intact.
  void append(const void* bytes, std::size_t n) {
    if (n == 0) return;
    if (n > capacity_ - size_) [[unlikely]] {
      if (n > SIZE_MAX - size_) throw std::bad_alloc();
      // Growing may move the block: bytes inside it are found again at the same offset.
      const auto* source = static_cast<const std::byte*>(bytes);
      const bool inside = data_ != nullptr && std::less_equal<>{}(data_, source) &&
                          std::less<>{}(source, data_ + capacity_);
      const std::size_t offset = inside ? static_cast<std::size_t>(source - data_) : 0;
      reserve(size_ + n);
      if (inside) bytes = data_ + offset;
    }
    std::memcpy(data_ + size_, bytes, n);
    size_ += n;
  }
  // Appends the characters of s; throws std::bad_alloc, buffer intact.
  void append(std::string_view s) { append(s.data(), s.size()); }
  // Appends one character; throws std::bad_alloc, buffer intact.
  void push_back(char c) {
    if (size_ == capacity_) [[unlikely]]
      reserve(size_ + 1);
    data_[size_++] = static_cast<std::byte>(c);
  }

  // Takes ownership of block p (from sp_malloc) of usable size `capacity`; internal to pools.
  static byte_buffer adopt(void* p, std::size_t capacity) noexcept {
    byte_buffer b;
    b.data_ = static_cast<std::byte*>(p);
    b.capacity_ = capacity;
    return b;
  }
  // Gives up the memory block (the caller frees it); the buffer becomes empty. Never fails.
  void* detach() noexcept {
    size_ = capacity_ = 0;
    return std::exchange(data_, nullptr);
  }

 private:
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

// Settings of a buffer_pool.
struct buffer_pool_options {
  std::size_t min_capacity = 256;  // smallest class (rounded up to a power of two, >= 16)
  std::size_t cap = 64 * 1024;     // put() drops buffers whose capacity is above this
  std::uint32_t per_thread = 16;   // buffers one thread caches per class
  bool calibrate = false;          // recompute the cap from requested sizes
  double percentile = 0.95;        // calibration: keep buffers up to this percentile...
  std::uint32_t window = 1024;     // ...of the sizes of each window of this many get()s
};

class SLABPOOL_API buffer_pool {
 public:
  static constexpr unsigned kClasses = 28;  // min_capacity << 27 is far above any sane cap

  // A borrowed buffer; puts it back (cleared) when destroyed. Move-only.
  class handle {
   public:
    handle() noexcept = default;
    handle(handle&& o) noexcept
        : pool_(o.pool_), buffer_(std::move(o.buffer_)), ticket_(o.ticket_) {}
    // Puts back the held buffer, then takes over `o`'s. Never fails.
    handle& operator=(handle&& o) noexcept {
      if (this != &o) {
        reset();
        pool_ = o.pool_;
        buffer_ = std::move(o.buffer_);
        ticket_ = o.ticket_;
      }
      return *this;
    }
    // Puts the buffer back; aborts in checked mode when the pool is already gone.
    ~handle() { reset(); }
    byte_buffer& operator*() noexcept { return buffer_; }
    byte_buffer* operator->() noexcept { return &buffer_; }
    // Puts the buffer back now; the handle becomes empty. Never fails.
    void reset() noexcept {
      if (pool_ == nullptr) return;
      if constexpr (detail::kPoolChecks) {
        if (!detail::ticket_alive(ticket_))
          detail::pool_fatal("buffer_pool handle used or destroyed after its pool");
      }
      std::exchange(pool_, nullptr)->put(std::move(buffer_));
    }
    // Keeps the buffer: the caller owns it from now on (its destructor frees it). Never fails.
    byte_buffer release() noexcept {
      pool_ = nullptr;
      return std::move(buffer_);
    }

   private:
    friend class buffer_pool;
    handle(buffer_pool* pool, byte_buffer b, std::uint64_t ticket) noexcept
        : pool_(pool), buffer_(std::move(b)), ticket_(ticket) {}
    buffer_pool* pool_ = nullptr;
    byte_buffer buffer_;
    std::uint64_t ticket_ = 0;
  };

  // A pool with the given classes and cap; throws std::bad_alloc.
  explicit buffer_pool(buffer_pool_options options = {});
  buffer_pool(const buffer_pool&) = delete;
  buffer_pool& operator=(const buffer_pool&) = delete;
  // Frees every cached buffer. Handles must be gone (the rule of pool.hpp).
  ~buffer_pool();

  // An empty buffer with capacity >= n: cached, or new. Sizes above the cap get a new buffer of
  // their own, which put() will drop. Throws std::bad_alloc.
  handle get(std::size_t n);
  // Caches b cleared, in the largest class its capacity covers; frees it instead when its
  // capacity is above the cap (counted in drops), below the smallest class, or the thread's cache
  // for that class is full (counted in overflows). Never fails.
  void put(byte_buffer&& b) noexcept;

  // Sets the cap (rounded down to a class size, at least the smallest); cached buffers above it
  // are dropped when met or by the next epochs. Never fails.
  void set_cap(std::size_t bytes) noexcept;
  // The current cap in bytes. Never fails.
  std::size_t cap() const noexcept { return cap_.load(std::memory_order_relaxed); }
  // Recomputes the cap from the sizes requested since the last calibration (no change when none
  // were). Never fails.
  void calibrate_now() noexcept;

  // Ends a trim epoch for every class of this pool. Never fails.
  void advance_epoch() noexcept;
  // Counters summed over the classes (requests above the cap count as gets and misses). Never
  // fails.
  pool_stats stats() const noexcept;
  // Counters of one class (class k holds capacities in [min << k, min << (k+1))). Never fails.
  pool_stats class_stats(unsigned k) const noexcept;
  // Capacity of class k's buffers. Never fails.
  std::size_t class_capacity(unsigned k) const noexcept { return min_ << k; }

 private:
  unsigned class_for_request(std::size_t n) const noexcept;   // smallest class >= n
  unsigned class_for_capacity(std::size_t c) const noexcept;  // largest class <= c
  void observe(unsigned k) noexcept;

  std::size_t min_;
  unsigned min_shift_;
  std::uint32_t per_thread_;
  std::atomic<std::size_t> cap_;
  bool calibrate_;
  double percentile_;
  std::uint32_t window_;
  std::unique_ptr<detail::pool_core> classes_[kClasses];
  std::atomic<std::uint64_t> unpooled_gets_{0};  // requests above the cap (rare by design)
  std::atomic<std::uint64_t> drops_{0};
  std::atomic<std::uint32_t> observed_{0};
  std::atomic<std::uint32_t> histogram_[kClasses + 1] = {};  // last bucket: above every class
};

}  // namespace slabpool
