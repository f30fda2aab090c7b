// object_pool<T>: reuse, the reset hook, release/put, the per-thread bound, trim epochs, stats;
// hooks stored by type (template parameters, deduction, make_object_pool).
#include <gtest/gtest.h>
#include <slabpool/pool.hpp>

#include <array>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "pool_test_util.hpp"

using pool_test::tracked;
using tracked_pool = slabpool::object_pool<tracked>;

namespace {

tracked_pool::reset_type clearing_reset(std::atomic<long>* resets) {
  return [resets](tracked& t) {
    t.dirty = 0;
    ++*resets;
  };
}

TEST(object_pool, reuses_the_object_it_was_given_back) {
  tracked_pool pool;
  tracked* first;
  {
    auto h = pool.get();
    first = h.get();
    EXPECT_TRUE(sp_owns(first)) << "objects live in slabpool memory";
  }
  auto h = pool.get();
  EXPECT_EQ(h.get(), first);
  const slabpool::pool_stats s = pool.stats();
  EXPECT_EQ(s.gets, 2u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.puts, 1u);
}

TEST(object_pool, factory_makes_new_objects) {
  int made = 0;
  slabpool::object_pool<std::vector<int>> pool([&made] {
    ++made;
    return std::vector<int>(3, 7);
  });
  auto a = pool.get();
  auto b = pool.get();
  EXPECT_EQ(made, 2);
  EXPECT_EQ(*a, std::vector<int>(3, 7));
}

TEST(object_pool, reset_hook_runs_on_every_put_before_reuse) {
  std::atomic<long> resets{0};
  {
    tracked_pool pool({}, clearing_reset(&resets));
    std::vector<tracked_pool::handle> held;
    for (int round = 0; round < 50; ++round) {
      for (int i = 0; i < 1 + round % 7; ++i) {
        held.push_back(pool.get());
        EXPECT_EQ(held.back()->dirty, 0) << "an object came back without its reset";
        held.back()->dirty = 1;
      }
      held.erase(held.begin(), held.begin() + static_cast<long>(held.size() / 2));
    }
    held.clear();
    EXPECT_EQ(static_cast<std::uint64_t>(resets.load()), pool.stats().puts);
  }
  EXPECT_EQ(tracked::live(), 0);
}

TEST(object_pool, release_keeps_the_object_and_put_gives_it_back) {
  {
    tracked_pool pool;
    slabpool::pooled_ptr<tracked> kept = pool.get().release();
    ASSERT_NE(kept, nullptr);
    EXPECT_EQ(pool.stats().cached, 0u);
    EXPECT_EQ(pool.stats().puts, 0u);
    tracked* raw = kept.get();
    pool.put(std::move(kept));
    EXPECT_EQ(pool.stats().cached, 1u);
    EXPECT_EQ(pool.get().get(), raw);
    // A released object may outlive its pool: its deleter needs no pool.
    kept = pool.get().release();
    EXPECT_EQ(tracked::live(), 1);
  }
  EXPECT_EQ(tracked::live(), 0);
}

TEST(object_pool, released_object_outlives_the_pool) {
  slabpool::pooled_ptr<tracked> kept;
  {
    tracked_pool pool;
    kept = pool.get().release();
  }
  EXPECT_EQ(tracked::live(), 1);
  kept.reset();
  EXPECT_EQ(tracked::live(), 0);
}

TEST(object_pool, handles_move_and_reset) {
  tracked_pool pool;
  auto a = pool.get();
  tracked* p = a.get();
  tracked_pool::handle b = std::move(a);
  EXPECT_FALSE(a);
  EXPECT_EQ(b.get(), p);
  b = pool.get();  // the first object goes back
  EXPECT_EQ(pool.stats().cached, 1u);
  b.reset();
  EXPECT_FALSE(b);
  EXPECT_EQ(pool.stats().cached, 2u);
}

TEST(object_pool, per_thread_cache_is_bounded) {
  {
    tracked_pool pool({}, {}, slabpool::pool_options{4});
    std::vector<tracked_pool::handle> held;
    for (int i = 0; i < 10; ++i) held.push_back(pool.get());
    held.clear();
    const slabpool::pool_stats s = pool.stats();
    EXPECT_EQ(s.cached, 4u);
    EXPECT_EQ(s.overflows, 6u);
    EXPECT_EQ(tracked::live(), 4);
  }
  EXPECT_EQ(tracked::live(), 0);
}

TEST(object_pool, destruction_destroys_cached_objects) {
  {
    tracked_pool pool;
    std::vector<tracked_pool::handle> held;
    for (int i = 0; i < 20; ++i) held.push_back(pool.get());
  }
  EXPECT_EQ(tracked::live(), 0);
}

TEST(object_pool, factory_exception_leaves_the_pool_usable) {
  bool fail = true;
  slabpool::object_pool<std::string> pool([&fail] {
    if (fail) throw std::runtime_error("no");
    return std::string(100, 'y');
  });
  EXPECT_THROW(pool.get(), std::runtime_error);
  fail = false;
  EXPECT_EQ(pool.get()->size(), 100u);
}

TEST(object_pool, throwing_reset_destroys_the_object) {
  {
    tracked_pool pool({}, [](tracked&) { throw std::runtime_error("dirty"); });
    { auto h = pool.get(); }  // swallowed in the destructor: the object is destroyed
    EXPECT_EQ(tracked::live(), 0);
    EXPECT_EQ(pool.stats().cached, 0u);
    auto kept = pool.get().release();
    EXPECT_THROW(pool.put(std::move(kept)), std::runtime_error);
    EXPECT_EQ(tracked::live(), 0);
  }
}

TEST(object_pool, idle_pool_empties_after_two_epochs) {
  pool_test::use_fake_clock();
  tracked_pool pool;
  {
    std::vector<tracked_pool::handle> held;
    for (int i = 0; i < 10; ++i) held.push_back(pool.get());
  }
  ASSERT_EQ(pool.stats().cached, 10u);
  pool_test::advance_ms(1000);
  sp_trim_decay();  // epoch 1: the caches become the victim generation
  EXPECT_EQ(pool.stats().cached, 10u);
  EXPECT_EQ(tracked::live(), 10);
  pool_test::advance_ms(1000);
  sp_trim_decay();  // epoch 2: nothing was reused, all destroyed
  EXPECT_EQ(pool.stats().cached, 0u);
  EXPECT_EQ(pool.stats().trimmed, 10u);
  EXPECT_EQ(pool.stats().epochs, 2u);
  EXPECT_EQ(tracked::live(), 0);
}

TEST(object_pool, objects_reused_between_epochs_survive) {
  pool_test::use_fake_clock();
  tracked_pool pool;
  {
    std::vector<tracked_pool::handle> held;
    for (int i = 0; i < 5; ++i) held.push_back(pool.get());
  }
  sp_trim();  // epoch 1
  tracked* reused;
  {
    auto h = pool.get();  // from the victim generation: a hit, cached again on put
    reused = h.get();
    EXPECT_EQ(pool.stats().hits, 1u);
  }
  sp_trim();  // epoch 2: the 4 others go; the reused one becomes a victim
  EXPECT_EQ(pool.stats().trimmed, 4u);
  EXPECT_EQ(tracked::live(), 1);
  EXPECT_EQ(pool.get().get(), reused);
}

TEST(object_pool, explicit_epochs_per_pool_and_process_wide) {
  tracked_pool a, b;
  { auto h = a.get(); }
  { auto h = b.get(); }
  a.advance_epoch();
  a.advance_epoch();
  EXPECT_EQ(a.stats().cached, 0u);
  EXPECT_EQ(b.stats().cached, 1u);
  slabpool::pool_epoch();
  slabpool::pool_epoch();
  EXPECT_EQ(b.stats().cached, 0u);
  EXPECT_EQ(tracked::live(), 0);
}

TEST(object_pool, trim_hook_is_registered) {
  tracked_pool pool;
  EXPECT_TRUE(slabpool::pool_trim_hooked());
}

TEST(object_pool, many_pools_come_and_go) {
  // Pool indices are reused: a thread's stale table entries must never reach a new pool.
  std::vector<std::unique_ptr<tracked_pool>> pools;
  for (int round = 0; round < 200; ++round) {
    pools.push_back(std::make_unique<tracked_pool>());
    { auto h = pools.back()->get(); }
    if (round % 3 == 0 && pools.size() > 1) pools.erase(pools.begin());
    std::thread([&] { auto h = pools.back()->get(); }).join();
  }
  for (auto& p : pools) EXPECT_LE(p->stats().cached, 2u);
  pools.clear();
  EXPECT_EQ(tracked::live(), 0);
}

// A reset hook stored by type, with state: counts its calls, clears the object.
struct counting_reset {
  std::atomic<long>* calls;
  void operator()(tracked& t) const noexcept {
    t.dirty = 0;
    ++*calls;
  }
};

TEST(object_pool_typed_hooks, hooks_as_template_parameters_run_like_std_function_ones) {
  std::atomic<long> resets{0};
  {
    slabpool::object_pool<tracked, slabpool::default_factory<tracked>, counting_reset> pool(
        {}, counting_reset{&resets});
    tracked* first;
    {
      auto h = pool.get();
      first = h.get();
      h->dirty = 5;
    }
    auto h = pool.get();
    EXPECT_EQ(h.get(), first);
    EXPECT_EQ(h->dirty, 0);
    EXPECT_EQ(resets.load(), 1);
    EXPECT_EQ(pool.stats().hits, 1u);
  }
  EXPECT_EQ(tracked::live(), 0);
}

TEST(object_pool_typed_hooks, deduced_from_the_hooks) {
  int made = 0;
  slabpool::object_pool pool([&made] { return std::vector<int>(4, ++made); },
                             [](std::vector<int>& v) noexcept { v.assign(v.size(), 0); });
  static_assert(std::is_same_v<decltype(pool)::value_type, std::vector<int>>);
  { auto h = pool.get(); }
  auto h = pool.get();
  EXPECT_EQ(made, 1);
  EXPECT_EQ(*h, std::vector<int>(4, 0));
  slabpool::object_pool only_factory([] { return std::string(3, 'q'); });
  EXPECT_EQ(*only_factory.get(), "qqq");
}

TEST(object_pool_typed_hooks, make_object_pool_and_a_throwing_typed_reset) {
  auto zeroing = slabpool::make_object_pool<std::array<unsigned char, 4096>>(
      slabpool::default_factory<std::array<unsigned char, 4096>>{},
      [](std::array<unsigned char, 4096>& b) noexcept { b.fill(0); });
  {
    auto h = zeroing.get();
    h->fill(0xab);
  }
  auto h = zeroing.get();
  EXPECT_EQ((*h)[0], 0);
  EXPECT_EQ((*h)[4095], 0);
  h.reset();
  EXPECT_EQ(zeroing.stats().cached, 1u);

  auto throwing = slabpool::make_object_pool<tracked>(
      slabpool::default_factory<tracked>{}, [](tracked&) { throw std::runtime_error("dirty"); });
  { auto t = throwing.get(); }  // swallowed: the object is destroyed, as with std::function
  EXPECT_EQ(throwing.stats().cached, 0u);
  auto kept = throwing.get().release();
  EXPECT_THROW(throwing.put(std::move(kept)), std::runtime_error);
  EXPECT_EQ(tracked::live(), 0);
}

}  // namespace
