#include "handoff.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "common/pattern.hpp"
#include "slabpool/slabpool.h"

namespace sp_fuzz {
namespace {

struct job {
  block b;
  bool sized;
};

struct worker {
  std::mutex lock;
  std::condition_variable wake;  // a job arrived
  std::condition_variable idle;  // the queue ran empty and nothing is being freed
  std::deque<job> queue;
  bool busy = false;

  worker() {
    // Detached and never destroyed: libFuzzer exits from anywhere, and a joinable std::thread
    // destroyed at exit would call std::terminate.
    std::thread([this] { run(); }).detach();
  }

  void run() {
    std::unique_lock guard(lock);
    for (;;) {
      wake.wait(guard, [this] { return !queue.empty(); });
      job j = queue.front();
      queue.pop_front();
      busy = true;
      guard.unlock();
      expect(sp_check::check_pattern_sparse(j.b.p, j.b.checked, j.b.checked, j.b.seed) ==
                 sp_check::kPatternOk,
             "block contents changed before a cross-thread free", j.b.p, j.b.checked);
      if (j.sized) {
        sp_free_sized(j.b.p, j.b.size);
      } else {
        sp_free(j.b.p);
      }
      guard.lock();
      busy = false;
      if (queue.empty()) idle.notify_all();
    }
  }
};

worker& the_worker() {
  static worker* w = new worker();  // intentionally leaked, see worker()
  return *w;
}

}  // namespace

void hand_off(const block& b, bool sized) {
  worker& w = the_worker();
  {
    std::lock_guard guard(w.lock);
    w.queue.push_back({b, sized});
  }
  w.wake.notify_one();
}

void drain_hand_offs() {
  worker& w = the_worker();
  std::unique_lock guard(w.lock);
  w.idle.wait(guard, [&w] { return w.queue.empty() && !w.busy; });
}

}  // namespace sp_fuzz
