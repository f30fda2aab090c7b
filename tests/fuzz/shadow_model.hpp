// The fuzz target's shadow model: what every live block must look like. Each slot holds at most
// one block with the pattern it was filled with; an interval map of [start, start + usable) over
// all live blocks catches two blocks sharing memory the moment the second one is handed out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>

namespace sp_fuzz {

// Prints what went wrong (operation, pointer, size) and aborts: libFuzzer then keeps the input,
// and the replay test fails.
[[noreturn]] void fail(const char* what, const void* p, std::size_t size);

inline void expect(bool ok, const char* what, const void* p, std::size_t size) {
  if (!ok) [[unlikely]]
    fail(what, p, size);
}

struct block {
  void* p = nullptr;
  std::size_t size = 0;     // bytes requested: realloc must keep min(size, new size) of them
  std::size_t checked = 0;  // bytes carrying the pattern (size, or the whole usable size)
  std::size_t usable = 0;   // sp_usable_size at allocation; must not change while live
  std::uint64_t seed = 0;   // pattern seed
};

// Live bytes the model allows at once: fuzz inputs must never push the machine into real OOM.
inline constexpr std::size_t kLiveLimit = std::size_t{256} << 20;

class shadow_model {
 public:
  static constexpr unsigned kSlots = 32;

  block& slot(unsigned i) { return slots_[i % kSlots]; }

  // Checks a fresh block (alignment, usable size, ownership, no overlap with any live block),
  // fills its requested bytes with a new pattern, and records it.
  void adopt(block& b, std::size_t alignment);
  // Checks the block's pattern and usable size, and forgets it (the caller frees it).
  void release(block& b);
  // Checks the block's pattern without forgetting it.
  void verify(const block& b) const;
  // Refills [0, usable) with a new pattern, proving all of it is writable.
  void fill_usable(block& b);
  // Whether `more` bytes fit under kLiveLimit with what is live (here and in flight elsewhere).
  bool has_room(std::size_t more) const { return live_bytes_ + in_flight_ + more <= kLiveLimit; }
  // Bytes owned by another thread that will free them; counted against kLiveLimit.
  void add_in_flight(std::size_t n) { in_flight_ += n; }
  void clear_in_flight() { in_flight_ = 0; }
  std::size_t live_bytes() const { return live_bytes_; }

 private:
  void insert_interval(const block& b);
  void erase_interval(const block& b);

  block slots_[kSlots];
  std::map<std::uintptr_t, std::uintptr_t> intervals_;  // start -> end, of live blocks
  std::size_t live_bytes_ = 0;
  std::size_t in_flight_ = 0;
  std::uint64_t counter_ = 0;  // fresh pattern seeds
};

}  // namespace sp_fuzz
