// buffer_pool: capacity classes over pool_core, the cap, and its calibration.
#include "slabpool/buffer_pool.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "slabpool/slabpool.h"

namespace slabpool {
namespace {

void free_block(void* p) noexcept {
  sp_free(p);
}

}  // namespace

buffer_pool::buffer_pool(buffer_pool_options options)
    : min_(std::bit_ceil(options.min_capacity < 16 ? std::size_t{16} : options.min_capacity)),
      min_shift_(static_cast<unsigned>(std::countr_zero(min_))),
      per_thread_(options.per_thread),
      cap_(0),
      calibrate_(options.calibrate),
      percentile_(options.percentile <= 0 || options.percentile > 1 ? 0.95 : options.percentile),
      window_(options.window == 0 ? 1 : options.window) {
  for (auto& c : classes_) c = std::make_unique<detail::pool_core>(per_thread_, &free_block);
  set_cap(options.cap);
}

buffer_pool::~buffer_pool() = default;

unsigned buffer_pool::class_for_request(std::size_t n) const noexcept {
  if (n <= min_) return 0;
  const unsigned k = static_cast<unsigned>(std::bit_width(n - 1)) - min_shift_;
  return k < kClasses ? k : kClasses;  // kClasses: no class is big enough
}

unsigned buffer_pool::class_for_capacity(std::size_t c) const noexcept {
  const unsigned k = static_cast<unsigned>(std::bit_width(c)) - 1 - min_shift_;
  return k < kClasses ? k : kClasses - 1;
}

void buffer_pool::set_cap(std::size_t bytes) noexcept {
  if (bytes < min_) bytes = min_;
  const unsigned k = class_for_capacity(bytes);
  cap_.store(class_capacity(k), std::memory_order_relaxed);
}

buffer_pool::handle buffer_pool::get(std::size_t n) {
  const unsigned k = class_for_request(n);
  if (calibrate_) observe(k);
  const std::uint64_t ticket = classes_[0]->ticket();
  if (k == kClasses || class_capacity(k) > cap()) {
    unpooled_gets_.fetch_add(1, std::memory_order_relaxed);
    return handle(this, byte_buffer(n), ticket);
  }
  detail::pool_core& core = *classes_[k];
  detail::shard* s = core.local();
  void* p = core.pop_local(s);
  if (p == nullptr) p = core.get_slow(s);
  if (p == nullptr) {
    // A new buffer of exactly the class size, so that it comes back to this class.
    p = sp_malloc(class_capacity(k));
    if (p == nullptr) throw std::bad_alloc();
  }
  return handle(this, byte_buffer::adopt(p, sp_usable_size(p)), ticket);
}

void buffer_pool::put(byte_buffer&& b) noexcept {
  const std::size_t capacity = b.capacity();
  void* p = b.detach();
  if (p == nullptr) return;
  if (capacity > cap()) {
    // The go#23199 trap: caching this would pin its memory for as long as the pool is busy.
    drops_.fetch_add(1, std::memory_order_relaxed);
    sp_free(p);
    return;
  }
  if (capacity < min_) {
    sp_free(p);
    return;
  }
  detail::pool_core& core = *classes_[class_for_capacity(capacity)];
  detail::shard* s;
  try {
    s = core.local();
  } catch (...) {
    sp_free(p);
    return;
  }
  if (!core.push_local(s, p)) sp_free(p);
}

void buffer_pool::observe(unsigned k) noexcept {
  histogram_[k].fetch_add(1, std::memory_order_relaxed);
  if (observed_.fetch_add(1, std::memory_order_relaxed) + 1 >= window_) calibrate_now();
}

void buffer_pool::calibrate_now() noexcept {
  std::uint32_t counts[kClasses + 1];
  std::uint64_t total = 0;
  observed_.store(0, std::memory_order_relaxed);
  for (unsigned k = 0; k <= kClasses; ++k) {
    counts[k] = histogram_[k].exchange(0, std::memory_order_relaxed);
    total += counts[k];
  }
  if (total == 0) return;
  // The smallest class covering `percentile` of the requests: requests above it are rare enough
  // that making them a fresh buffer each time costs less than pinning their memory.
  const double wanted = percentile_ * static_cast<double>(total);
  std::uint64_t seen = 0;
  for (unsigned k = 0; k < kClasses; ++k) {
    seen += counts[k];
    if (static_cast<double>(seen) >= wanted) {
      cap_.store(class_capacity(k), std::memory_order_relaxed);
      return;
    }
  }
  cap_.store(class_capacity(kClasses - 1), std::memory_order_relaxed);
}

void buffer_pool::advance_epoch() noexcept {
  for (auto& c : classes_) c->advance_epoch();
}

pool_stats buffer_pool::class_stats(unsigned k) const noexcept {
  return k < kClasses ? classes_[k]->stats() : pool_stats{};
}

pool_stats buffer_pool::stats() const noexcept {
  pool_stats out;
  for (const auto& c : classes_) {
    const pool_stats s = c->stats();
    out.gets += s.gets;
    out.hits += s.hits;
    out.misses += s.misses;
    out.steals += s.steals;
    out.puts += s.puts;
    out.overflows += s.overflows;
    out.trimmed += s.trimmed;
    out.cached += s.cached;
    out.epochs = s.epochs > out.epochs ? s.epochs : out.epochs;
  }
  const std::uint64_t unpooled = unpooled_gets_.load(std::memory_order_relaxed);
  out.gets += unpooled;
  out.misses += unpooled;
  out.drops = drops_.load(std::memory_order_relaxed);
  out.puts += out.drops;
  return out;
}

}  // namespace slabpool
