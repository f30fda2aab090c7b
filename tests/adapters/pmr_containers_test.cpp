// Every std::pmr container, driven by the same random operation sequence on a slabpool resource
// and on std::pmr::new_delete_resource(), must observe exactly the same results. The slabpool side
// runs through checked_resource, which also catches misaligned, overlapping or mismatched blocks.
#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory_resource>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "checked_resource.hpp"
#include "slabpool/pmr.hpp"

namespace {

using trace = std::vector<std::int64_t>;
using runner = std::function<trace(std::pmr::memory_resource*, std::uint64_t)>;

constexpr int kOps = 6000;

// A string of random length (0..300: inside and beyond the small-string buffer, many classes).
std::pmr::string random_string(std::mt19937_64& rng, std::pmr::memory_resource* r) {
  const std::size_t n = rng() % 301;
  std::pmr::string s(r);
  for (std::size_t i = 0; i < n; ++i) s.push_back(static_cast<char>('a' + rng() % 26));
  return s;
}

std::int64_t digest(const std::pmr::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return static_cast<std::int64_t>(h ^ s.size());
}

trace run_vector(std::pmr::memory_resource* r, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::pmr::vector<std::int64_t> v(r);
  std::pmr::vector<std::pmr::string> strings(r);  // each element allocates from r as well
  trace out;
  for (int op = 0; op < kOps; ++op) {
    switch (rng() % 6) {
      case 0:
      case 1:
        v.push_back(static_cast<std::int64_t>(rng() % 1000));
        break;
      case 2:
        if (!v.empty()) v.erase(v.begin() + static_cast<std::ptrdiff_t>(rng() % v.size()));
        break;
      case 3:
        strings.push_back(random_string(rng, r));
        break;
      case 4:
        if (!strings.empty()) strings.pop_back();
        break;
      case 5:
        if (rng() % 50 == 0) {
          v.shrink_to_fit();
          strings.shrink_to_fit();
        }
        break;
    }
    if (op % 64 == 0) {
      out.push_back(static_cast<std::int64_t>(v.size()));
      for (const auto& s : strings) out.push_back(digest(s));
    }
  }
  out.insert(out.end(), v.begin(), v.end());
  return out;
}

trace run_string(std::pmr::memory_resource* r, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::pmr::string s(r);
  trace out;
  for (int op = 0; op < kOps; ++op) {
    switch (rng() % 5) {
      case 0:
        s += random_string(rng, r);
        break;
      case 1:
        s.insert(rng() % (s.size() + 1), random_string(rng, r));
        break;
      case 2:
        if (!s.empty()) s.erase(rng() % s.size(), rng() % 200);
        break;
      case 3:
        out.push_back(digest(std::pmr::string(s, s.size() / 2, std::string::npos, r)));
        break;
      case 4:
        if (s.size() > 100000) s.resize(rng() % 1000);
        break;
    }
    if (op % 64 == 0) out.push_back(digest(s));
  }
  out.push_back(digest(s));
  return out;
}

trace run_map(std::pmr::memory_resource* r, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::pmr::map<int, std::pmr::string> m(r);
  trace out;
  for (int op = 0; op < kOps; ++op) {
    const int key = static_cast<int>(rng() % 2000);
    switch (rng() % 4) {
      case 0:
      case 1:
        m.insert_or_assign(key, random_string(rng, r));
        break;
      case 2:
        out.push_back(static_cast<std::int64_t>(m.erase(key)));
        break;
      case 3: {
        auto it = m.lower_bound(key);
        out.push_back(it == m.end() ? -1 : it->first * 1000003ll + digest(it->second) % 1000);
        break;
      }
    }
  }
  for (const auto& [k, v] : m) out.insert(out.end(), {k, digest(v)});
  return out;
}

trace run_unordered_map(std::pmr::memory_resource* r, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::pmr::unordered_map<std::int64_t, std::int64_t> m(r);
  trace out;
  for (int op = 0; op < kOps * 4; ++op) {  // enough keys for bucket arrays beyond 128 KiB
    const auto key = static_cast<std::int64_t>(rng() % 30000);
    switch (rng() % 5) {
      case 0:
      case 1:
      case 2:
        m[key] += op;
        break;
      case 3:
        out.push_back(static_cast<std::int64_t>(m.erase(key)));
        break;
      case 4: {
        auto it = m.find(key);
        out.push_back(it == m.end() ? -1 : it->second);
        break;
      }
    }
  }
  std::map<std::int64_t, std::int64_t> sorted(m.begin(), m.end());  // iteration order may differ
  for (const auto& [k, v] : sorted) out.insert(out.end(), {k, v});
  return out;
}

trace run_list(std::pmr::memory_resource* r, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::pmr::list<std::int64_t> l(r);
  trace out;
  for (int op = 0; op < kOps; ++op) {
    switch (rng() % 6) {
      case 0:
        l.push_back(static_cast<std::int64_t>(rng() % 100000));
        break;
      case 1:
        l.push_front(static_cast<std::int64_t>(rng() % 100000));
        break;
      case 2:
        if (!l.empty()) l.pop_front();
        break;
      case 3:
        l.remove_if([&](std::int64_t x) { return x % 97 == static_cast<std::int64_t>(op % 97); });
        break;
      case 4:
        if (rng() % 100 == 0) l.sort();
        break;
      case 5: {
        std::pmr::list<std::int64_t> other(r);
        for (int i = 0; i < 5; ++i) other.push_back(op + i);
        l.splice(l.begin(), other);
        break;
      }
    }
    if (op % 64 == 0) out.push_back(static_cast<std::int64_t>(l.size()));
  }
  out.insert(out.end(), l.begin(), l.end());
  return out;
}

trace run_deque(std::pmr::memory_resource* r, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::pmr::deque<std::int64_t> d(r);
  trace out;
  for (int op = 0; op < kOps * 4; ++op) {
    switch (rng() % 5) {
      case 0:
      case 1:
        d.push_back(op);
        break;
      case 2:
        d.push_front(-op);
        break;
      case 3:
        if (!d.empty()) d.pop_front();
        break;
      case 4:
        if (!d.empty()) out.push_back(d[rng() % d.size()]);
        break;
    }
    if (op % 5000 == 0) d.shrink_to_fit();
  }
  out.insert(out.end(), d.begin(), d.end());
  return out;
}

struct container_case {
  const char* name;
  runner run;
};

const container_case kCases[] = {
    {"vector", run_vector}, {"string", run_string},
    {"map", run_map},       {"unordered_map", run_unordered_map},
    {"list", run_list},     {"deque", run_deque},
};
constexpr std::uint64_t kSeeds[] = {1, 42, 0x5eed};

// Runs `c` on the resource and on new_delete_resource and compares everything they observed.
void expect_same_as_new_delete(const container_case& c, std::pmr::memory_resource* r,
                               std::uint64_t seed) {
  SCOPED_TRACE(testing::Message() << c.name << " seed " << seed);
  const trace expected = c.run(std::pmr::new_delete_resource(), seed);
  slabpool_test::checked_resource checked(r);
  const trace got = c.run(&checked, seed);
  ASSERT_GT(expected.size(), 10u);
  EXPECT_GT(checked.allocations(), 100u) << "the resource under test was not used";
  EXPECT_EQ(got, expected);
}

TEST(PmrContainers, GlobalResourceMatchesNewDelete) {
  for (const auto& c : kCases) {
    for (std::uint64_t seed : kSeeds) expect_same_as_new_delete(c, slabpool::get_resource(), seed);
  }
}

TEST(PmrContainers, ArenaMatchesNewDelete) {
  for (const auto& c : kCases) {
    for (std::uint64_t seed : kSeeds) {
      slabpool::arena_resource arena;
      expect_same_as_new_delete(c, &arena, seed);
      EXPECT_GT(arena.mapped_bytes(), 0u);
    }
  }
}

// One arena reused across every container: blocks freed by one container serve the next.
TEST(PmrContainers, ArenaSharedAcrossContainersAndReleases) {
  slabpool::arena_resource arena;
  for (int round = 0; round < 2; ++round) {
    for (const auto& c : kCases) expect_same_as_new_delete(c, &arena, 7 + round);
    arena.release();
    EXPECT_EQ(arena.mapped_bytes(), 0u);
  }
}

}  // namespace
