// Size classes: 16-byte steps up to 128 B, then four classes per power of two up to 4 KiB, 128-byte
// steps to 4480 B, eight classes per doubling from 4608 B to 64 KiB and four again up to 128 KiB:
// 67 classes. The worst internal waste is just under 20 % from 128 B to 4 KiB and above 64 KiB,
// just over 11 % between. A page-sized buffer with a header is a common block (sqlite3's
// page-cache entries are 4104 and 4368 B; database buffer pools and network buffers look alike),
// so the first steps above 4 KiB are 128 B: those entries take 4224 and 4480 B, where eighths gave
// both 4608 (issue 12: 3 MiB of sqlite3's 42 MiB peak was that rounding). Above 64 KiB eighths
// would leave slabs of two blocks and a third of a slab unused (88 KiB in 256 KiB).
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
inline constexpr std::size_t kFineClassStep = 128;         // then steps of 128 B
inline constexpr std::size_t kMaxFineClassSize = 4480;     // up to here
inline constexpr std::size_t kMaxEighthClassSize = 64 * 1024;  // eight per doubling up to here
inline constexpr std::size_t kMaxClassSize = 128 * 1024;
inline constexpr unsigned kFirstFineClass = 28;    // the first class above kMaxQuarterClassSize
inline constexpr unsigned kFirstEighthClass = 31;  // the first class above kMaxFineClassSize
inline constexpr unsigned kFirstTopClass = 63;     // the first class above kMaxEighthClassSize
inline constexpr unsigned kClassCount = 67;

// Class of a size in (128, kMaxQuarterClassSize]: four classes per doubling.
constexpr unsigned class_of_quarters(std::size_t size) {
  const std::size_t s = size - 1;
  const unsigned e = static_cast<unsigned>(std::bit_width(s)) - 1;  // 2^e <= s < 2^(e+1)
  const unsigned quarter = static_cast<unsigned>(s >> (e - 2)) & 3;
  return 8 + (e - 7) * 4 + quarter;
}

// Class of a size in (kMaxFineClassSize, kMaxEighthClassSize]: eight classes per doubling (the
// first, 4608, is the eighth above 4 KiB; the fine steps take the sizes below it).
constexpr unsigned class_of_eighths(std::size_t size) {
  const std::size_t s = size - 1;
  const unsigned e = static_cast<unsigned>(std::bit_width(s)) - 1;  // 12 <= e <= 15
  const unsigned eighth = static_cast<unsigned>(s >> (e - 3)) & 7;
  return kFirstEighthClass + (e - 12) * 8 + eighth;
}

constexpr std::size_t class_size(unsigned cls) {
  if (cls < 8) return (cls + 1) * 16;
  if (cls < kFirstFineClass) {
    const unsigned e = 7 + (cls - 8) / 4;
    const unsigned quarter = (cls - 8) % 4;
    return (std::size_t{5} + quarter) << (e - 2);
  }
  if (cls < kFirstEighthClass)
    return kMaxQuarterClassSize + (cls - kFirstFineClass + 1) * kFineClassStep;
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

// Class of a size in (kMaxDirectSize, kMaxClassSize] by the formulas of each range.
constexpr unsigned class_above_direct_by_formula(std::size_t size) {
  if (size <= kMaxQuarterClassSize) return class_of_quarters(size);
  if (size <= kMaxFineClassSize)
    return kFirstFineClass +
           static_cast<unsigned>((size - kMaxQuarterClassSize - 1) / kFineClassStep);
  if (size <= kMaxEighthClassSize) return class_of_eighths(size);
  return kFirstTopClass + (static_cast<unsigned>((size - 1) >> 14) & 3);
}

// Every class above kMaxDirectSize is a multiple of 128 B, so (size - 1) >> 7 finds any of them
// with one load of a 1 KiB table: no branch on the size's range. Random sizes in a mix took the
// range branches' mispredictions (issue 12: random_live, 0.1 mispredicted branch per step more
// than with the quarter formula alone, about 5 % of its time).
inline constexpr auto kLargeClassTable = [] {
  std::array<std::uint8_t, kMaxClassSize / kFineClassStep> table{};
  for (std::size_t i = kMaxDirectSize / kFineClassStep; i < table.size(); ++i) {
    // The largest size of the entry; no class boundary falls inside it (asserted below).
    table[i] = static_cast<std::uint8_t>(class_above_direct_by_formula((i + 1) * kFineClassStep));
  }
  return table;
}();

// Class serving a size in (kMaxDirectSize, kMaxClassSize].
constexpr unsigned class_above_direct(std::size_t size) {
  return kLargeClassTable[(size - 1) >> 7];
}

// Class serving `size`; only for size <= kMaxClassSize.
constexpr unsigned size_to_class(std::size_t size) {
  if (size <= kMaxDirectSize) return kSmallClassTable[(size + 15) >> 4];
  return class_above_direct(size);
}

inline constexpr unsigned kMaxSlabUnits = 4;

// The part of a slab of `units` units that no block of `size` bytes can use.
constexpr std::size_t slab_tail(std::size_t size, unsigned units) {
  return (std::size_t{units} * kUnitSize) % size;
}

// Units per slab: room for at least eight blocks, capped at 256 KiB so a few idle slabs of the
// biggest classes do not pin much memory; from there, the fewest units whose unused tail is under
// 2 % of the slab, else the length with the smallest tail. A 64 KiB slab of 4480 B blocks leaves
// 2816 B unused (4.3 %: a block costs 4681 B, no less than one of 4608), one of 128 KiB 1152 B.
// Pages are carved as blocks are taken, so a longer slab costs no memory until it is used.
constexpr unsigned class_slab_units(unsigned cls) {
  const std::size_t size = class_size(cls);
  const std::size_t want = (size * 8 + kUnitSize - 1) / kUnitSize;
  const unsigned first =
      static_cast<unsigned>(want < 1 ? 1 : (want > kMaxSlabUnits ? kMaxSlabUnits : want));
  unsigned best = first;
  for (unsigned units = first; units <= kMaxSlabUnits; ++units) {
    if (slab_tail(size, units) * 50 < std::size_t{units} * kUnitSize) return units;
    if (slab_tail(size, units) * best < slab_tail(size, best) * units) best = units;
  }
  return best;
}

static_assert(class_size(kClassCount - 1) == kMaxClassSize);
static_assert(SP_CLASS_COUNT == kClassCount, "the public stats array has one entry per class");
static_assert(SP_MAX_ALIGNMENT == kMaxAlignment, "the public limit is the one the core serves");
static_assert(size_to_class(kMaxClassSize) == kClassCount - 1);
static_assert(size_to_class(129) == 8 && class_size(8) == 160);
static_assert(size_to_class(1) == 0 && size_to_class(16) == 0 && size_to_class(17) == 1);
static_assert(class_size(kFirstFineClass - 1) == kMaxQuarterClassSize &&
              class_size(kFirstFineClass) == 4224);
static_assert(size_to_class(4096) == kFirstFineClass - 1 && size_to_class(4097) == kFirstFineClass);
static_assert(class_size(kFirstEighthClass - 1) == kMaxFineClassSize &&
              class_size(kFirstEighthClass) == 4608);
static_assert(size_to_class(4104) == kFirstFineClass &&
              size_to_class(4368) == kFirstEighthClass - 1);
static_assert(size_to_class(4608 + 1) == kFirstEighthClass + 1);
static_assert(
    [] {
      for (unsigned cls = size_to_class(kMaxDirectSize + 1); cls < kClassCount; ++cls) {
        if (class_size(cls) % kFineClassStep != 0) return false;
      }
      return true;
    }(),
    "kLargeClassTable needs every class above kMaxDirectSize to be a multiple of 128 B");
static_assert(class_size(kFirstTopClass - 1) == kMaxEighthClassSize &&
              size_to_class(kMaxEighthClassSize + 1) == kFirstTopClass);

}  // namespace slabpool::detail
