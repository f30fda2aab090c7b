// White-box checks of the size-class table (allocator/src/size_class.hpp): every size up to the
// largest class maps to the smallest class that holds it, and the waste stays within the bounds
// issue 2 promises.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>

#include "base/size_class.hpp"

namespace {

using namespace slabpool::detail;

constexpr std::size_t round_up(std::size_t size, std::size_t step) {
  return (size + step - 1) / step * step;
}

TEST(SizeClass, EverySizeGetsTheSmallestClassThatFits) {
  for (std::size_t size = 1; size <= kMaxClassSize; ++size) {
    const unsigned cls = size_to_class(size);
    ASSERT_LT(cls, kClassCount) << "size " << size;
    ASSERT_GE(class_size(cls), size) << "size " << size << " class " << cls;
    // The class below would not fit: otherwise the lookup wastes memory for nothing.
    if (cls > 0) {
      ASSERT_LT(class_size(cls - 1), size) << "size " << size << " class " << cls;
    }
  }
}

TEST(SizeClass, ZeroSizeUsesTheSmallestClass) {
  // sp_malloc(0) goes through the same lookup and must get a real block.
  EXPECT_EQ(size_to_class(0), 0u);
  EXPECT_GE(class_size(0), 1u);
}

TEST(SizeClass, ClassSizesStrictlyIncreaseAndEndAtTheMaximum) {
  for (unsigned cls = 1; cls < kClassCount; ++cls) {
    EXPECT_GT(class_size(cls), class_size(cls - 1)) << "class " << cls;
  }
  EXPECT_EQ(class_size(kClassCount - 1), kMaxClassSize);
  EXPECT_GE(kMaxClassSize, std::size_t{128} * 1024) << "issue 2: classes up to at least 128 KiB";
}

TEST(SizeClass, LookupIsMonotonic) {
  unsigned previous = size_to_class(1);
  for (std::size_t size = 2; size <= kMaxClassSize; ++size) {
    const unsigned cls = size_to_class(size);
    ASSERT_GE(cls, previous) << "size " << size;
    previous = cls;
  }
}

TEST(SizeClass, EveryClassKeepsMallocAlignment) {
  // Slabs start on unit boundaries, so blocks are 16-aligned only if every class size is.
  for (unsigned cls = 0; cls < kClassCount; ++cls) {
    EXPECT_EQ(class_size(cls) % kMinAlignment, 0u) << "class " << cls;
  }
}

TEST(SizeClass, SmallSizesStepBy16) {
  for (std::size_t size = 1; size <= 128; ++size) {
    ASSERT_EQ(class_size(size_to_class(size)), round_up(size, 16)) << "size " << size;
  }
}

TEST(SizeClass, WasteBound) {
  // Waste is measured against the block handed out: (class - size) / class.
  for (std::size_t size = 64; size <= kMaxClassSize; ++size) {
    const double cls = static_cast<double>(class_size(size_to_class(size)));
    const double waste = (cls - static_cast<double>(size)) / cls;
    ASSERT_LE(waste, 0.25) << "size " << size << " class size " << cls;
    if (size > 128) {
      ASSERT_LE(waste, 0.20) << "size " << size << " class size " << cls;
    }
    // Eight classes per doubling from 4 to 64 KiB: page-sized buffers with a header lose little.
    if (size > kMaxQuarterClassSize && size <= kMaxEighthClassSize) {
      ASSERT_LE(waste, 0.12) << "size " << size << " class size " << cls;
    }
  }
}

TEST(SizeClass, FourClassesPerDoublingButEightFrom4To64KiB) {
  // The geometric part must not skip or repeat steps: exactly four (eight from 4 to 64 KiB)
  // classes in each (2^e, 2^(e+1)], and between 4 KiB and its first eighth, 4608 B, steps of
  // 128 B.
  for (std::size_t low = 128; low < kMaxClassSize; low *= 2) {
    const unsigned first = size_to_class(low + 1);
    const unsigned last = size_to_class(2 * low);
    const bool eighths = low >= kMaxQuarterClassSize && low < kMaxEighthClassSize;
    const unsigned fine = low == kMaxQuarterClassSize ? 3u : 0u;
    EXPECT_EQ(last - first, (eighths ? 7u : 3u) + fine) << "doubling above " << low;
    EXPECT_EQ(class_size(last), 2 * low);
  }
  for (std::size_t size = kMaxQuarterClassSize + 1; size <= 4608; ++size) {
    ASSERT_EQ(class_size(size_to_class(size)), round_up(size, 128)) << "size " << size;
  }
}

TEST(SizeClass, PageSizedBuffersWithAHeaderLoseLittle) {
  // sqlite3's page-cache entries: a 4 KiB page and its header.
  for (std::size_t size : {4104, 4368}) {
    const std::size_t cls = class_size(size_to_class(size));
    EXPECT_LE(cls - size, 128u) << "size " << size;
  }
}

// The shortest slab with room for eight blocks, within the cap.
unsigned eight_block_units(unsigned cls) {
  const std::size_t want = (class_size(cls) * 8 + kUnitSize - 1) / kUnitSize;
  return static_cast<unsigned>(std::clamp<std::size_t>(want, 1, kMaxSlabUnits));
}

TEST(SizeClass, SlabUnitsAreSane) {
  // The cap on slab length is a tuning choice; these are the properties any choice must keep.
  unsigned cap = 0;
  for (unsigned cls = 0; cls < kClassCount; ++cls) cap = std::max(cap, class_slab_units(cls));
  EXPECT_LE(std::size_t{cap} * kUnitSize, std::size_t{512} * 1024)
      << "idle slabs of the biggest classes must not pin much memory";
  for (unsigned cls = 0; cls < kClassCount; ++cls) {
    const unsigned units = class_slab_units(cls);
    const std::size_t span = std::size_t{units} * kUnitSize;
    const std::size_t blocks = span / class_size(cls);
    SCOPED_TRACE(::testing::Message()
                 << "class " << cls << " size " << class_size(cls) << " units " << units);
    EXPECT_GE(units, 1u);
    EXPECT_LE(units, kMaxLargeUnits) << "a slab must fit in one segment";
    // Room for eight blocks unless the cap stops it; never a slab of a single block.
    if (units < cap) {
      EXPECT_GE(blocks, 8u);
    }
    EXPECT_GE(blocks, 2u);
    // The unused tail of a slab stays a small part of it: under 2 % wherever a length from the
    // eight-block one up to the cap gets it there, and never more than the eight-block length's.
    const std::size_t tail = span - blocks * class_size(cls);
    EXPECT_LE(tail * 4, span);
    bool reachable = false;
    for (unsigned u = eight_block_units(cls); u <= cap; ++u) {
      reachable |= (std::size_t{u} * kUnitSize) % class_size(cls) * 50 < u * kUnitSize;
    }
    if (reachable) {
      EXPECT_LT(tail * 50, span);
    }
    const unsigned base = eight_block_units(cls);
    EXPECT_LE(tail * base, (std::size_t{base} * kUnitSize) % class_size(cls) * units);
  }
}

}  // namespace
