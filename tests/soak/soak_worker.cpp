#include <cstdio>
#include <thread>

#include "slabpool/slabpool.h"
#include "soak_state.hpp"

namespace sp_soak {

void soak_state::fail(const char* what, const void* p, std::size_t size) {
  if (failures.fetch_add(1) < 10) {
    std::fprintf(stderr, "soak: FAILED: %s (pointer %p, size %zu)\n", what, p, size);
  }
}

block make_block(soak_state& s, std::size_t size, sp_check::rng& r) {
  block b{sp_malloc(size), size, 0};
  if (b.p == nullptr) {
    s.fail("sp_malloc returned null", nullptr, size);
    return b;
  }
  if (sp_usable_size(b.p) < size) s.fail("usable size below the request", b.p, size);
  if (!sp_check::is_aligned(b.p, 16)) s.fail("block not 16-aligned", b.p, size);
  b.seed = sp_check::address_seed(b.p, r.next());
  sp_check::fill_pattern(b.p, size, b.seed);
  s.note_live(size, true);
  s.allocations.fetch_add(1, std::memory_order_relaxed);
  return b;
}

bool check_block(soak_state& s, const block& b) {
  if (sp_check::check_pattern(b.p, b.size, b.seed) != sp_check::kPatternOk) {
    s.fail("block contents changed while it was live", b.p, b.size);
    return false;
  }
  s.ops_checked.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void drop_block(soak_state& s, const block& b, bool sized) {
  if (b.p == nullptr) return;
  check_block(s, b);
  if (sized) {
    sp_free_sized(b.p, b.size);
  } else {
    sp_free(b.p);
  }
  s.note_live(b.size, false);
}

namespace {

void drain(soak_state& s, inbox& box, std::size_t max) {
  std::vector<block> taken;
  {
    std::lock_guard guard(box.lock);
    while (!box.blocks.empty() && taken.size() < max) {
      taken.push_back(box.blocks.back());
      box.blocks.pop_back();
    }
  }
  for (const block& b : taken) drop_block(s, b, (b.seed & 1) != 0);
}

void resize(soak_state& s, block& b, sp_check::rng& r) {
  const std::size_t size = random_size(r);
  if (!check_block(s, b)) return;
  void* q = sp_realloc(b.p, size);
  if (q == nullptr) {
    s.fail("sp_realloc returned null", b.p, size);
    return;
  }
  const std::size_t kept = b.size < size ? b.size : size;
  if (sp_check::check_pattern(q, kept, b.seed) != sp_check::kPatternOk) {
    s.fail("realloc lost the contents", q, kept);
  }
  s.note_live(size, true);
  s.note_live(b.size, false);
  b = {q, size, sp_check::address_seed(q, r.next())};
  sp_check::fill_pattern(q, size, b.seed);
}

}  // namespace

void run_worker(soak_state& s, unsigned slot, std::uint64_t seed, std::uint64_t ops) {
  sp_check::rng r(seed);
  std::vector<block> mine;
  const std::size_t my_cap = s.live_cap / s.workers;
  std::size_t my_bytes = 0;
  for (std::uint64_t op = 0; op < ops && !s.stop.load(std::memory_order_relaxed); ++op) {
    if (op % 64 == 0) drain(s, s.inboxes[slot], SIZE_MAX);
    const std::uint64_t pick = r.next() % 100;
    const std::size_t at = mine.empty() ? 0 : r.next() % mine.size();
    if (pick < 50 || mine.empty()) {
      const std::size_t size = random_size(r);
      if (my_bytes + size > my_cap ||
          s.live_bytes.load(std::memory_order_relaxed) + size > s.live_cap) {
        continue;
      }
      mine.push_back(make_block(s, size, r));
      if (mine.back().p == nullptr) {
        mine.pop_back();
      } else {
        my_bytes += size;
      }
      continue;
    }
    block b = mine[at];
    if (pick < 80 || pick >= 96) {
      mine[at] = mine.back();
      mine.pop_back();
      my_bytes -= b.size;
      if (pick < 80) {
        drop_block(s, b, (op & 1) != 0);
      } else {
        // Another thread frees it: a remote free, into whatever heap now owns the slab.
        inbox& to = s.inboxes[r.next() % s.workers];
        std::lock_guard guard(to.lock);
        to.blocks.push_back(b);
      }
    } else if (pick < 88) {
      my_bytes -= b.size;
      resize(s, mine[at], r);
      my_bytes += mine[at].size;
    } else {
      drain(s, s.orphans, 16);  // free blocks of threads that exited
    }
  }
  // Exit with live blocks: their slabs are abandoned, and other threads free them later.
  std::lock_guard guard(s.orphans.lock);
  s.orphans.blocks.insert(s.orphans.blocks.end(), mine.begin(), mine.end());
}

int child_checks(soak_state& s, std::vector<block>& inherited, std::uint64_t seed) {
  sp_check::rng r(seed);
  const std::uint64_t failures_before = s.failures.load();
  for (const block& b : inherited) drop_block(s, b, false);
  inherited.clear();
  auto churn = [&s](std::uint64_t thread_seed) {
    sp_check::rng tr(thread_seed);
    std::vector<block> blocks;
    for (int i = 0; i < 3000; ++i) {
      if (blocks.size() < 200 && tr.next() % 3 != 0) {
        blocks.push_back(make_block(s, random_size(tr) % (64 * kKiB) + 1, tr));
        if (blocks.back().p == nullptr) blocks.pop_back();
      } else if (!blocks.empty()) {
        drop_block(s, blocks.back(), false);
        blocks.pop_back();
      }
    }
    for (const block& b : blocks) drop_block(s, b, true);
  };
  churn(r.next());                     // the forking thread's heap, inherited
  std::thread fresh(churn, r.next());  // a heap built in the child
  fresh.join();
  sp_trim();
  return s.failures.load() == failures_before ? 0 : 1;
}

}  // namespace sp_soak
