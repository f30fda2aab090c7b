// Size classes: 16-byte steps up to 128 B, then four classes per power of two up to 4 KiB, eight
// up to 64 KiB and four again up to 128 KiB: 64 classes. The worst internal waste is just under
// 20 % from 128 B to 4 KiB and above 64 KiB, just over 11 % between: a page-sized buffer with a
// header (sqlite3's 4104 and 4368 B page-cache entries) takes 4608 B, where four classes per
// doubling gave it 5120 (issue 12). Above 64 KiB eighths would leave slabs of two blocks and a
// third of a slab unused (88 KiB in 256 KiB).
//
// One vocabulary for sizes, used everywhere:
//   small   up to kMaxClassSize (128 KiB): a block of a size class, carved from a slab
//           (slab_kind::small);
//   direct  the small sizes up to kMaxDirectSize (1 KiB), whose class the heap finds by indexing
//           its `direct` array with (size + 15) / 16: the commonest allocations skip the table;
//   large   above kMaxClassSize: page-granular, a run of units in a segment or, beyond a segment,
//           a mapping of its own (slab_kind::large / huge).
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "geometry.hpp"
#include "slabpool/slabpool.h"

namespace slabpool::detail {

inline constexpr std::size_t kMaxStepClassSize = 128;      // last class of the 16-byte steps
inline constexpr std::size_t kMaxDirectSize = 1024;        // sizes resolved by one table load
inline constexpr std::size_t kMaxQuarterClassSize = 4096;  // four classes per doubling up to here
inline constexpr std::size_t kMaxEighthClassSize = 64 * 1024;  // eight per doubling up to here
inline constexpr std::size_t kMaxClassSize = 128 * 1024;
inline constexpr unsigned kFirstEighthClass = 28;  // the first class above kMaxQuarterClassSize
inline constexpr unsigned kFirstTopClass = 60;     // the first class above kMaxEighthClassSize
inline constexpr unsigned kClassCount = 64;

// Class of a size in (128, kMaxQuarterClassSize]: four classes per doubling.
constexpr unsigned class_of_quarters(std::size_t size) {
  const std::size_t s = size - 1;
  const unsigned e = static_cast<unsigned>(std::bit_width(s)) - 1;  // 2^e <= s < 2^(e+1)
  const unsigned quarter = static_cast<unsigned>(s >> (e - 2)) & 3;
  return 8 + (e - 7) * 4 + quarter;
}

// Class of a size in (kMaxQuarterClassSize, kMaxEighthClassSize]: eight classes per doubling.
constexpr unsigned class_of_eighths(std::size_t size) {
  const std::size_t s = size - 1;
  const unsigned e = static_cast<unsigned>(std::bit_width(s)) - 1;  // 12 <= e <= 15
  const unsigned eighth = static_cast<unsigned>(s >> (e - 3)) & 7;
  return kFirstEighthClass + (e - 12) * 8 + eighth;
}

constexpr std::size_t class_size(unsigned cls) {
  if (cls < 8) return (cls + 1) * 16;
  if (cls < kFirstEighthClass) {
    const unsigned e = 7 + (cls - 8) / 4;
    const unsigned quarter = (cls - 8) % 4;
    return (std::size_t{5} + quarter) << (e - 2);
  }
  if (cls < kFirstTopClass) {
    const unsigned e = 12 + (cls - kFirstEighthClass) / 8;
    const unsigned eighth = (cls - kFirstEighthClass) % 8;
    return (std::size_t{9} + eighth) << (e - 3);
  }
  return (std::size_t{5} + (cls - kFirstTopClass)) << 14;  // (64 KiB, 128 KiB] in quarters
}

inline constexpr auto kSmallClassTable = [] {
  std::array<std::uint8_t, kMaxDirectSize / 16 + 1> table{};
  for (std::size_t i = 0; i < table.size(); ++i) {
    const std::size_t size = i == 0 ? 1 : i * 16;
    table[i] = static_cast<std::uint8_t>(size <= kMaxStepClassSize ? (size + 15) / 16 - 1
                                                                   : class_of_quarters(size));
  }
  return table;
}();

// Classes of (kMaxDirectSize, kMaxQuarterClassSize] by (size - 1) >> 8: their sizes are multiples
// of 256, so one load finds them, fewer instructions than the formula.
inline constexpr auto kMidClassTable = [] {
  std::array<std::uint8_t, kMaxQuarterClassSize / 256> table{};
  for (std::size_t i = kMaxDirectSize / 256; i < table.size(); ++i) {
    table[i] = static_cast<std::uint8_t>(class_of_quarters((i + 1) * 256));
  }
  return table;
}();

// Class serving a size in (kMaxDirectSize, kMaxClassSize].
constexpr unsigned class_above_direct(std::size_t size) {
  if (size <= kMaxQuarterClassSize) return kMidClassTable[(size - 1) >> 8];
  if (size <= kMaxEighthClassSize) return class_of_eighths(size);
  return kFirstTopClass + (static_cast<unsigned>((size - 1) >> 14) & 3);
}

// Class serving `size`; only for size <= kMaxClassSize.
constexpr unsigned size_to_class(std::size_t size) {
  if (size <= kMaxDirectSize) return kSmallClassTable[(size + 15) >> 4];
  return class_above_direct(size);
}

// Units per slab: room for at least eight blocks, capped at 256 KiB so a few idle slabs of the
// biggest classes do not pin much memory.
constexpr unsigned class_slab_units(unsigned cls) {
  const std::size_t want = (class_size(cls) * 8 + kUnitSize - 1) / kUnitSize;
  return static_cast<unsigned>(want < 1 ? 1 : (want > 4 ? 4 : want));
}

static_assert(class_size(kClassCount - 1) == kMaxClassSize);
static_assert(SP_CLASS_COUNT == kClassCount, "the public stats array has one entry per class");
static_assert(SP_MAX_ALIGNMENT == kMaxAlignment, "the public limit is the one the core serves");
static_assert(size_to_class(kMaxClassSize) == kClassCount - 1);
static_assert(size_to_class(129) == 8 && class_size(8) == 160);
static_assert(size_to_class(1) == 0 && size_to_class(16) == 0 && size_to_class(17) == 1);
static_assert(class_size(kFirstEighthClass - 1) == kMaxQuarterClassSize &&
              class_size(kFirstEighthClass) == 4608);
static_assert(size_to_class(4096) == kFirstEighthClass - 1 &&
              size_to_class(4097) == kFirstEighthClass);
static_assert(class_size(kFirstTopClass - 1) == kMaxEighthClassSize &&
              size_to_class(kMaxEighthClassSize + 1) == kFirstTopClass);

}  // namespace slabpool::detail
