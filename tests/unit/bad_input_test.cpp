// Every bad input of the public API in one table: what the C API returns and sets in errno, and
// that the C++ API throws std::bad_alloc instead. Also the fatal reports for invalid frees.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <new>
#include <string>
#include <vector>

#include "slabpool/slabpool.h"
#include "slabpool/slabpool.hpp"
#include "unit_test_util.hpp"

namespace {

using namespace sp_test;

constexpr std::size_t kPtrdiffMax = PTRDIFF_MAX;
constexpr std::size_t kHalf = (SIZE_MAX >> 1) + 1;

struct bad_case {
  std::string name;
  std::function<void*()> c_call;
  std::function<void*()> cpp_call;
  int expected_errno;
};

// Old block for the realloc cases; must stay valid through every failed call.
void* g_block = nullptr;

std::vector<bad_case> bad_cases() {
  return {
      {"malloc(SIZE_MAX)", [] { return sp_malloc(SIZE_MAX); },
       [] { return slabpool::malloc(SIZE_MAX); }, ENOMEM},
      {"malloc(PTRDIFF_MAX)", [] { return sp_malloc(kPtrdiffMax); },
       [] { return slabpool::malloc(kPtrdiffMax); }, ENOMEM},
      {"malloc(PTRDIFF_MAX+1)", [] { return sp_malloc(kPtrdiffMax + 1); },
       [] { return slabpool::malloc(kPtrdiffMax + 1); }, ENOMEM},
      {"calloc(SIZE_MAX, SIZE_MAX)", [] { return sp_calloc(SIZE_MAX, SIZE_MAX); },
       [] { return slabpool::calloc(SIZE_MAX, SIZE_MAX); }, ENOMEM},
      {"calloc(2^63, 2)", [] { return sp_calloc(kHalf, 2); },
       [] { return slabpool::calloc(kHalf, 2); }, ENOMEM},
      {"calloc(2^32, 2^32)", [] { return sp_calloc(std::size_t{1} << 32, std::size_t{1} << 32); },
       [] { return slabpool::calloc(std::size_t{1} << 32, std::size_t{1} << 32); }, ENOMEM},
      {"calloc(1, SIZE_MAX)", [] { return sp_calloc(1, SIZE_MAX); },
       [] { return slabpool::calloc(1, SIZE_MAX); }, ENOMEM},
      {"realloc(p, SIZE_MAX)", [] { return sp_realloc(g_block, SIZE_MAX); },
       [] { return slabpool::realloc(g_block, SIZE_MAX); }, ENOMEM},
      {"realloc(p, PTRDIFF_MAX+1)", [] { return sp_realloc(g_block, kPtrdiffMax + 1); },
       [] { return slabpool::realloc(g_block, kPtrdiffMax + 1); }, ENOMEM},
      {"realloc(nullptr, SIZE_MAX)", [] { return sp_realloc(nullptr, SIZE_MAX); },
       [] { return slabpool::realloc(nullptr, SIZE_MAX); }, ENOMEM},
      {"aligned_alloc(0, 16)", [] { return sp_aligned_alloc(0, 16); },
       [] { return slabpool::aligned_alloc(0, 16); }, EINVAL},
      {"aligned_alloc(3, 16)", [] { return sp_aligned_alloc(3, 16); },
       [] { return slabpool::aligned_alloc(3, 16); }, EINVAL},
      {"aligned_alloc(24, 16)", [] { return sp_aligned_alloc(24, 16); },
       [] { return slabpool::aligned_alloc(24, 16); }, EINVAL},
      {"aligned_alloc(MAX*2, 16)", [] { return sp_aligned_alloc(SP_MAX_ALIGNMENT * 2, 16); },
       [] { return slabpool::aligned_alloc(SP_MAX_ALIGNMENT * 2, 16); }, EINVAL},
      {"aligned_alloc(2^63, 16)", [] { return sp_aligned_alloc(kHalf, 16); },
       [] { return slabpool::aligned_alloc(kHalf, 16); }, EINVAL},
      {"aligned_alloc(3, SIZE_MAX)", [] { return sp_aligned_alloc(3, SIZE_MAX); },
       [] { return slabpool::aligned_alloc(3, SIZE_MAX); }, EINVAL},
      {"aligned_alloc(64, SIZE_MAX)", [] { return sp_aligned_alloc(64, SIZE_MAX); },
       [] { return slabpool::aligned_alloc(64, SIZE_MAX); }, ENOMEM},
      {"aligned_alloc(MAX, PTRDIFF_MAX)",
       [] { return sp_aligned_alloc(SP_MAX_ALIGNMENT, kPtrdiffMax); },
       [] { return slabpool::aligned_alloc(SP_MAX_ALIGNMENT, kPtrdiffMax); }, ENOMEM},
  };
}

TEST(BadInput, CApiReturnsNullAndSetsErrno) {
  g_block = sp_malloc(64);
  ASSERT_NE(g_block, nullptr);
  fill_pattern(g_block, 64, 42);
  for (const bad_case& c : bad_cases()) {
    errno = 0;
    EXPECT_EQ(c.c_call(), nullptr) << c.name;
    EXPECT_EQ(errno, c.expected_errno) << c.name;
  }
  EXPECT_EQ(check_pattern(g_block, 64, 42), kPatternOk) << "a failed realloc touched its block";
  sp_free(g_block);
}

TEST(BadInput, CppApiThrowsBadAlloc) {
  g_block = slabpool::malloc(64);
  fill_pattern(g_block, 64, 43);
  for (const bad_case& c : bad_cases()) {
    EXPECT_THROW(c.cpp_call(), std::bad_alloc) << c.name;
  }
  EXPECT_EQ(check_pattern(g_block, 64, 43), kPatternOk) << "a failed realloc touched its block";
  slabpool::free(g_block);
}

TEST(BadInput, FailuresDoNotBreakLaterAllocations) {
  for (const bad_case& c : bad_cases()) {
    if (c.name.rfind("realloc(p", 0) == 0) continue;  // needs g_block
    (void)c.c_call();
  }
  void* p = sp_malloc(100);
  ASSERT_NE(p, nullptr);
  fill_pattern(p, 100, 1);
  sp_free(p);
}

TEST(BadInput, NullArgumentsAreHarmless) {
  sp_free(nullptr);
  sp_free_sized(nullptr, 12345);
  slabpool::free(nullptr);
  slabpool::free_sized(nullptr, 12345);
  EXPECT_EQ(sp_usable_size(nullptr), 0u);
  EXPECT_EQ(slabpool::usable_size(nullptr), 0u);
  EXPECT_FALSE(sp_owns(nullptr));
  EXPECT_FALSE(slabpool::owns(nullptr));
  void* p = sp_realloc(nullptr, 0);
  EXPECT_NE(p, nullptr) << "realloc(nullptr, 0) is malloc(0)";
  sp_free(p);
}

TEST(BadInputDeathTest, FreeOfASegmentAlignedPointerIsReported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // No block starts on a segment boundary, so such a pointer is never one of ours.
  EXPECT_DEATH(sp_free(reinterpret_cast<void*>(std::uintptr_t{1} << 30)), "slabpool");
}

TEST(BadInputDeathTest, DoubleFreeOfALargeBlockIsReported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        void* p = sp_malloc(1 * kMiB);
        sp_free(p);
        sp_free(p);
      },
      "slabpool");
}

}  // namespace
