// The platform's page moves (issue 13): a huge block glued from kept runs is built by moving their
// pages, and such a block spans several kernel mappings. Moving it again (gluing, or realloc) must
// keep every byte where the contract says, whichever kernel runs the test: kernels before 6.17
// refuse to move several mappings in one call.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "platform/platform.hpp"

namespace {

using slabpool::detail::os;

constexpr std::size_t kChunk = std::size_t{4} << 20;

// How many lines of /proc/self/maps (kernel mappings) overlap [p, p + bytes). Overlap, not
// inclusion: the kernel may merge the range's first or last mapping with a neighbour outside it.
int mappings_in(const void* p, std::size_t bytes) {
  FILE* maps = std::fopen("/proc/self/maps", "r");
  if (maps == nullptr) return -1;
  const auto lo = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t hi = lo + bytes;
  int count = 0;
  unsigned long start = 0, end = 0;
  char line[512];
  while (std::fgets(line, sizeof line, maps) != nullptr) {
    if (std::sscanf(line, "%lx-%lx", &start, &end) == 2 && start < hi && end > lo) ++count;
  }
  std::fclose(maps);
  return count;
}

// Three 4 MiB chunks in three kernel mappings (the middle one's flags differ), each chunk filled
// with its own byte.
char* three_mappings() {
  auto* p = static_cast<char*>(os::map_aligned(3 * kChunk, kChunk));
  if (p == nullptr) return nullptr;
  for (int i = 0; i < 3; ++i) std::memset(p + i * kChunk, 'a' + i, kChunk);
  madvise(p + kChunk, kChunk, MADV_NOHUGEPAGE);
  return p;
}

bool filled_with(const char* p, char c, std::size_t bytes) {
  for (std::size_t i = 0; i < bytes; i += 4096) {
    if (p[i] != c || p[i + 4095] != c) return false;
  }
  return true;
}

bool is_mapped(void* p, std::size_t bytes) {
  unsigned char vec[1];
  return mincore(p, bytes < 4096 ? bytes : 4096, vec) == 0;
}

TEST(page_moves, a_range_of_several_mappings_moves_whole_with_its_bytes) {
  char* from = three_mappings();
  ASSERT_NE(from, nullptr);
  ASSERT_EQ(mappings_in(from, 3 * kChunk), 3) << "the setup must span three kernel mappings";
  auto* to = static_cast<char*>(os::map_aligned(4 * kChunk, kChunk));
  ASSERT_NE(to, nullptr);
  ASSERT_TRUE(os::move_pages(from, 3 * kChunk, to + kChunk, kChunk));
  EXPECT_TRUE(filled_with(to, 0, kChunk)) << "the part nothing moved into stays zero";
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(filled_with(to + (i + 1) * kChunk, 'a' + i, kChunk)) << "chunk " << i;
  }
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(is_mapped(from + i * kChunk, kChunk)) << "chunk " << i;
  os::unmap(to, 4 * kChunk);
}

TEST(page_moves, a_remap_of_several_mappings_moves_them_or_leaves_them_untouched) {
  char* from = three_mappings();
  ASSERT_NE(from, nullptr);
  auto* moved = static_cast<char*>(os::remap_aligned(from, 3 * kChunk, 5 * kChunk, kChunk));
  char* now = moved != nullptr ? moved : from;  // nullptr: the kernel refused, nothing moved
  if (moved != nullptr) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(moved) % kChunk, 0u);
    EXPECT_TRUE(filled_with(moved + 3 * kChunk, 0, 2 * kChunk)) << "the growth reads as zeros";
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(filled_with(now + i * kChunk, 'a' + i, kChunk)) << "chunk " << i;
  }
  os::unmap(now, (moved != nullptr ? 5 : 3) * kChunk);
}

}  // namespace
