// Compile-time geometry of the allocator. Every other file derives its layout from these.
#pragma once

#include <cstddef>
#include <cstdint>

namespace slabpool::detail {

// A segment is an OS mapping aligned to its own size, so `p & ~(kSegmentSize-1)` finds the
// header of any block in O(1).
inline constexpr unsigned kSegmentShift = 22;  // 4 MiB
inline constexpr std::size_t kSegmentSize = std::size_t{1} << kSegmentShift;
inline constexpr std::uintptr_t kSegmentMask = kSegmentSize - 1;

// Segments are cut into units; a slab or a large block is a run of whole units. Unit 0 holds the
// segment header, so every slab starts on a unit boundary (64 KiB aligned).
inline constexpr unsigned kUnitShift = 16;  // 64 KiB
inline constexpr std::size_t kUnitSize = std::size_t{1} << kUnitShift;
inline constexpr unsigned kUnitsPerSegment =
    kSegmentSize / kUnitSize;  // 64: one bit each in a word
static_assert(kUnitsPerSegment == 64, "the unit bitmaps are one 64-bit word");

// malloc's guarantee (alignof(max_align_t)) and the smallest block.
inline constexpr std::size_t kMinAlignment = 16;

// Largest alignment served: user pointers then never sit on a segment boundary, which lets free()
// fold its null test and its "not a block" test into one compare.
inline constexpr std::size_t kMaxAlignment = kSegmentSize / 2;

// Largest large block kept inside a regular segment; bigger ones get a mapping of their own.
inline constexpr unsigned kMaxLargeUnits = kUnitsPerSegment - 1;
inline constexpr std::size_t kMaxSegmentLargeSize = std::size_t{kMaxLargeUnits} * kUnitSize;

// User-space addresses on x86-64 and AArch64 (4-level tables) fit in 47 bits; the remote free list
// packs a 16-bit count above them.
inline constexpr unsigned kAddressBits = 47;

}  // namespace slabpool::detail
