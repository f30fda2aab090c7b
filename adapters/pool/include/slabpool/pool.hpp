// slabpool — typed object pools: Go's sync.Pool for C++, in slabpool memory.
//
//   slabpool::object_pool<request> pool([] { return request(); },       // factory: a new object
//                                       [](request& r) { r.clear(); }); // reset: before reuse
//   // Hooks stored by type, so they inline (no std::function call per put):
//   slabpool::object_pool fast([] { return request(); }, [](request& r) noexcept { r.clear(); });
//   {
//     auto h = pool.get();   // a cached request (this thread's, another's) or a new one
//     h->parse(...);
//   }                        // back into this thread's cache, reset
//
// Per thread: a bounded stack of cached objects; get/put at its top cost one atomic exchange or
// one store, no lock. A get that finds the thread's cache empty steals from other threads, then
// takes from the victim generation, then calls the factory. Each trim epoch (every slabpool trim
// pass, or pool_epoch()/advance_epoch()) makes the cached objects the victim generation and
// destroys the previous one: an idle pool is empty after two epochs. Cached objects' destructors
// therefore run on whichever thread runs the epoch (the background trimmer, sp_trim's caller).
//
// Hooks: object_pool<T> keeps them as std::function (any callable, chosen at run time);
// object_pool<T, Factory, Reset> (or class template argument deduction from the hooks, or
// make_object_pool<T>) stores them by type, which lets the compiler inline a reset such as a
// 4 KiB memset into put.
//
// Lifetime rule: every handle must be gone before its pool. In checked mode (SLABPOOL_POOL_CHECKS,
// on by default when NDEBUG is not defined; define it the same way in every translation unit) a
// handle destroyed after its pool aborts with a message; otherwise it is undefined behaviour.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "slabpool/pool_checks.hpp"
#include "slabpool/pool_core.hpp"
#include "slabpool/slabpool.h"

namespace slabpool {

// Settings of an object_pool.
struct pool_options {
  std::uint32_t per_thread = 64;  // objects one thread caches; a put beyond it destroys the object
};

namespace detail {
inline constexpr bool kPoolChecks = SLABPOOL_POOL_CHECKS != 0;

// Raw memory for one T from slabpool; throws std::bad_alloc.
template <class T>
void* allocate_object() {
  void* p = alignof(T) <= 16 ? sp_malloc(sizeof(T)) : sp_aligned_alloc(alignof(T), sizeof(T));
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
template <class T>
void free_object(void* p) noexcept {
  if constexpr (alignof(T) <= 16)
    sp_free_sized(p, sizeof(T));
  else
    sp_free(p);
}
}  // namespace detail

// Destroys and frees an object released from a pool; needs no pool (valid after the pool died).
template <class T>
struct pool_deleter {
  void operator()(T* p) const noexcept {
    p->~T();
    detail::free_object<T>(p);
  }
};

// Unique ownership of an object taken out of a pool with handle::release().
template <class T>
using pooled_ptr = std::unique_ptr<T, pool_deleter<T>>;

// The hooks of a pool that has none: value-initialised objects, nothing done on return.
template <class T>
struct default_factory {
  T operator()() const { return T(); }
};
template <class T>
struct no_reset {
  void operator()(T&) const noexcept {}
};

namespace detail {
template <class F>
struct is_std_function : std::false_type {};
template <class Sig>
struct is_std_function<std::function<Sig>> : std::true_type {};
// An empty std::function or null function pointer means "no hook" (the default); other hooks
// are always there.
template <class F>
bool hook_empty(const F& f) noexcept {
  if constexpr (is_std_function<F>::value || std::is_pointer_v<F>)
    return !f;
  else
    return false;
}
}  // namespace detail

template <class T, class Factory = std::function<T()>, class Reset = std::function<void(T&)>>
class object_pool {
 public:
  using value_type = T;
  using factory_type = Factory;
  using reset_type = Reset;

  // A borrowed object: move-only; puts the object back (reset) when destroyed.
  class handle {
   public:
    handle() noexcept = default;
    handle(handle&& other) noexcept
        : pool_(other.pool_),
          object_(std::exchange(other.object_, nullptr)),
          ticket_(other.ticket_) {}
    // Puts back the object this handle held, then takes over `other`'s. Never fails.
    handle& operator=(handle&& other) noexcept {
      if (this != &other) {
        reset();
        pool_ = other.pool_;
        object_ = std::exchange(other.object_, nullptr);
        ticket_ = other.ticket_;
      }
      return *this;
    }
    // Puts the object back; aborts in checked mode when the pool is already gone.
    ~handle() { reset(); }

    T& operator*() const noexcept { return *object_; }
    T* operator->() const noexcept { return object_; }
    T* get() const noexcept { return object_; }
    explicit operator bool() const noexcept { return object_ != nullptr; }

    // Puts the object back now (reset hook, then cache); the handle becomes empty. Never fails
    // (a reset hook that throws makes the object be destroyed instead).
    void reset() noexcept {
      if (object_ == nullptr) return;
      if constexpr (detail::kPoolChecks) {
        if (!detail::ticket_alive(ticket_))
          detail::pool_fatal("object_pool handle used or destroyed after its pool");
      }
      pool_->put_back(std::exchange(object_, nullptr), false);
    }

    // Keeps the object: the handle becomes empty and the caller owns the object, which its
    // deleter destroys and frees without the pool (it may outlive the pool). Never fails.
    pooled_ptr<T> release() noexcept { return pooled_ptr<T>(std::exchange(object_, nullptr)); }

   private:
    friend class object_pool;
    handle(object_pool* pool, T* object, std::uint64_t ticket) noexcept
        : pool_(pool), object_(object), ticket_(ticket) {}
    object_pool* pool_ = nullptr;
    T* object_ = nullptr;
    std::uint64_t ticket_ = 0;
  };

  // A pool of value-initialised T (or of what a default-constructed Factory makes) with no
  // reset hook (or a default-constructed Reset); throws std::bad_alloc.
  object_pool() requires std::is_default_constructible_v<T> &&
      std::is_default_constructible_v<Factory> && std::is_default_constructible_v<Reset>
      : object_pool(Factory{}, Reset{}) {}

  // A pool making objects with `factory` (an empty std::function: T()) and cleaning returned
  // ones with `reset` (empty: none) before they are cached. Throws std::bad_alloc.
  explicit object_pool(Factory factory, Reset reset = Reset(), pool_options options = {})
      : core_(options.per_thread, &destroy_object),
        factory_(std::move(factory)),
        reset_(std::move(reset)) {}

  object_pool(const object_pool&) = delete;
  object_pool& operator=(const object_pool&) = delete;
  // Destroys every cached object. Handles must be gone (see the lifetime rule above).
  ~object_pool() = default;

  // A cached object, or a new one from the factory. Throws what the factory throws, or
  // std::bad_alloc; the pool is unchanged then.
  handle get() {
    detail::shard* s = core_.local();
    void* p = core_.pop_local(s);
    if (p == nullptr) [[unlikely]]
      p = get_miss(s);
    return handle(this, static_cast<T*>(p), core_.ticket());
  }

  // Gives back an object taken out with release(): reset, then cached (or destroyed when this
  // thread's cache is full). If the reset hook throws, the object is destroyed and the exception
  // propagates.
  void put(pooled_ptr<T> object) {
    if (object) put_back(object.release(), true);
  }

  // Ends a trim epoch for this pool only (see pool_epoch() for all pools). Never fails.
  void advance_epoch() noexcept { core_.advance_epoch(); }

  // Counters of this pool (exact when no thread is using it). Never fails.
  pool_stats stats() const noexcept { return core_.stats(); }

 private:
  static void destroy_object(void* p) noexcept { pool_deleter<T>{}(static_cast<T*>(p)); }

  [[gnu::noinline]] void* get_miss(detail::shard* s) {
    if (void* p = core_.get_slow(s)) return p;
    void* mem = detail::allocate_object<T>();
    try {
      if constexpr (std::is_default_constructible_v<T>) {
        if (detail::hook_empty(factory_)) return ::new (mem) T();
      }
      return ::new (mem) T(factory_());
    } catch (...) {
      detail::free_object<T>(mem);
      throw;
    }
  }

  void put_back(T* p, bool rethrow) {
    if constexpr (std::is_nothrow_invocable_v<Reset&, T&> && !detail::is_std_function<Reset>{}) {
      if (!detail::hook_empty(reset_)) reset_(*p);  // inlined; nothing to catch
    } else if (!detail::hook_empty(reset_)) {
      try {
        reset_(*p);
      } catch (...) {
        destroy_object(p);
        if (rethrow) throw;
        return;
      }
    }
    detail::shard* s;
    try {
      s = core_.local();  // allocates only on this thread's first use of the pool
    } catch (...) {
      destroy_object(p);
      return;
    }
    if (!core_.push_local(s, p)) [[unlikely]]
      destroy_object(p);
  }

  detail::pool_core core_;
  [[no_unique_address]] Factory factory_;
  [[no_unique_address]] Reset reset_;
};

// object_pool pool(factory[, reset[, options]]): T is what the factory returns; the hooks are
// stored by type.
template <class F>
object_pool(F) -> object_pool<std::invoke_result_t<F&>, F, no_reset<std::invoke_result_t<F&>>>;
template <class F, class R>
object_pool(F, R) -> object_pool<std::invoke_result_t<F&>, F, R>;
template <class F, class R>
object_pool(F, R, pool_options) -> object_pool<std::invoke_result_t<F&>, F, R>;

// A pool of T whose hooks are stored by type (see object_pool's constructor). Throws
// std::bad_alloc.
template <class T, class F = default_factory<T>, class R = no_reset<T>>
object_pool<T, F, R> make_object_pool(F factory = F(), R reset = R(), pool_options options = {}) {
  return object_pool<T, F, R>(std::move(factory), std::move(reset), options);
}

}  // namespace slabpool
