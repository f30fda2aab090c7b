// The connection pool people hand-write (the baseline of resource_pool's bench, issue 14): one
// std::mutex, one std::condition_variable, a std::deque of idle objects, an open-object count.
// Waiters are woken with notify_one but not served in order: whoever takes the mutex first gets
// the object, which is fast and unfair.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>

namespace bench {

template <class T>
class mutex_deque_pool {
 public:
  explicit mutex_deque_pool(std::size_t max_open) : max_open_(max_open) {}
  mutex_deque_pool(const mutex_deque_pool&) = delete;
  ~mutex_deque_pool() {
    for (T* t : idle_) delete t;
  }

  // An idle object, a new one while fewer than max_open exist, or nullptr at the deadline.
  T* acquire(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    while (idle_.empty()) {
      if (open_ < max_open_) {
        ++open_;
        lock.unlock();
        return new T();
      }
      if (ready_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty())
        return nullptr;
    }
    T* t = idle_.back();
    idle_.pop_back();
    return t;
  }

  void release(T* t) {
    {
      std::lock_guard lock(mutex_);
      idle_.push_back(t);
    }
    ready_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<T*> idle_;
  std::size_t open_ = 0;
  std::size_t max_open_;
};

}  // namespace bench
