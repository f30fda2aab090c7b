// A Go sync.Pool stand-in for the object_pool bench (issue 14): what sync.Pool does on its fast
// path, in C++. Go pins the goroutine to its P and uses the P's `private` slot (no atomics), then
// the P's shared chain, then other Ps' chains and the victim cache, then New. Here a thread plays
// the P: a private slot and a small thread-owned stack (the shared chain's head end, which its
// owner uses without contention), then `new T`. Stealing and the victim generation are left out:
// the bench never needs them (each thread gets and puts its own objects), so this is the fast
// path at its best. The reset is a template parameter, inlined into put like Go code that clears
// a buffer before Put.
#pragma once

#include <cstddef>
#include <vector>

namespace bench {

template <class T, class Reset>
class go_like_pool {
 public:
  // Every go_like_pool<T, Reset> shares one per-thread cache (the bench makes one pool per type).
  static T* get() {
    local& l = cache();
    if (T* p = l.priv) {
      l.priv = nullptr;
      return p;
    }
    if (!l.shared.empty()) {
      T* p = l.shared.back();
      l.shared.pop_back();
      return p;
    }
    return new T();  // Go's New: a zeroed object
  }
  static void put(T* p) {
    Reset{}(*p);
    local& l = cache();
    if (l.priv == nullptr) {
      l.priv = p;
      return;
    }
    if (l.shared.size() < kShared) {
      l.shared.push_back(p);
      return;
    }
    delete p;  // Go would keep it until two GCs pass; the bench never gets here
  }

 private:
  static constexpr std::size_t kShared = 64;
  struct local {
    T* priv = nullptr;
    std::vector<T*> shared;
    ~local() {
      delete priv;
      for (T* p : shared) delete p;
    }
  };
  static local& cache() {
    thread_local local l;
    return l;
  }
};

}  // namespace bench
