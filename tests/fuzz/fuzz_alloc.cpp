// libFuzzer target: the input is a program of allocator operations (see the opcode table in
// run_op), each checked against the shadow model: contents, no overlap, alignment, usable size,
// zeroed calloc, realloc keeping its prefix, errno on refused requests. The same function runs in
// every build: as a real fuzzer in the clang SLABPOOL_FUZZ build, and as a replay test (corpus,
// regressions and random programs) everywhere else.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "common/pattern.hpp"
#include "handoff.hpp"
#include "shadow_model.hpp"
#include "slabpool/slabpool.h"

namespace sp_fuzz {
namespace {

// Reads the input front to back; past the end every read is 0, so any byte string is a program.
class reader {
 public:
  reader(const std::uint8_t* data, std::size_t size) : data_(data), left_(size) {}
  bool empty() const { return left_ == 0; }
  std::uint8_t byte() {
    if (left_ == 0) return 0;
    --left_;
    return *data_++;
  }
  std::uint16_t u16() { return static_cast<std::uint16_t>(byte() | (byte() << 8)); }

 private:
  const std::uint8_t* data_;
  std::size_t left_;
};

// Sizes spread over every path: zero, the 16-byte steps, the power-of-two classes, large runs
// inside segments, the boundary where a block stops fitting in a segment (about 4 MiB) and huge
// mappings. One byte picks the range (mod 32), two more the size inside it.
std::size_t read_size(reader& in) {
  const unsigned range = in.byte() % 32;
  const std::size_t v = in.u16();
  constexpr std::size_t kKiB = sp_check::kKiB, kMiB = sp_check::kMiB;
  // Weighted like real programs (and so huge blocks, which cost page faults, stay rare enough for
  // thousands of executions a second).
  if (range == 0) return 0;
  if (range < 16) return 1 + v % 256;
  if (range < 22) return 1 + v % (4 * kKiB);
  if (range < 26) return 1 + v * 2;                            // up to 128 KiB: every class
  if (range < 29) return 128 * kKiB + v * 32;                  // large runs up to ~2.1 MiB
  if (range == 29) return 4 * kMiB - 256 * kKiB + v * 8;       // either side of the segment limit
  if (range == 30) return 4 * kMiB + v * 32;                   // huge, up to 6 MiB
  return v % 8 == 0 ? 8 * kMiB + v * 256 : 2 * kMiB + v * 32;  // 2-4 MiB, or huge up to 24 MiB
}

void free_block(shadow_model& model, block& b, bool sized) {
  if (b.p == nullptr) return;
  void* p = b.p;
  const std::size_t size = b.size;
  model.release(b);
  if (sized) {
    sp_free_sized(p, size);
  } else {
    sp_free(p);
  }
}

void do_malloc(shadow_model& model, block& b, std::size_t size) {
  free_block(model, b, false);
  if (!model.has_room(size)) return;
  b.size = size;
  b.p = sp_malloc(size);
  model.adopt(b, 16);
}

void do_aligned(shadow_model& model, block& b, unsigned shift, std::size_t size) {
  free_block(model, b, true);
  if (!model.has_room(size)) return;
  if (shift % 24 >= 22) {
    // Refused alignments: above SP_MAX_ALIGNMENT, or not a power of two.
    const std::size_t alignment = shift % 24 == 22 ? SP_MAX_ALIGNMENT * 2 : 48;
    errno = 0;
    void* p = sp_aligned_alloc(alignment, size);
    expect(p == nullptr && errno == EINVAL, "bad alignment not refused with EINVAL", p, alignment);
    return;
  }
  const std::size_t alignment = std::size_t{1} << (shift % 24);
  b.size = size;
  b.p = sp_aligned_alloc(alignment, size);
  model.adopt(b, alignment);
}

void do_calloc(shadow_model& model, block& b, unsigned count, std::size_t size) {
  free_block(model, b, false);
  if (count == 255) {
    // n * size overflows: refused with ENOMEM, never a short block.
    errno = 0;
    void* p = sp_calloc(SIZE_MAX / 2 + 1, 2 + size % 7);
    expect(p == nullptr && errno == ENOMEM, "overflowing calloc not refused", p, size);
    return;
  }
  const std::size_t n = 1 + count % 8;
  const std::size_t each = size / n;
  if (!model.has_room(n * each)) return;
  b.size = n * each;
  b.p = sp_calloc(n, each);
  expect(b.p != nullptr, "calloc failed below the live-memory bound", nullptr, b.size);
  expect(sp_check::first_nonzero(b.p, b.size) == sp_check::kPatternOk, "calloc block not zeroed",
         b.p, b.size);
  model.adopt(b, 16);
}

void do_realloc(shadow_model& model, block& b, std::size_t size) {
  if (b.p == nullptr) {
    if (!model.has_room(size)) return;
    b.size = size;
    b.p = sp_realloc(nullptr, size);  // realloc(NULL, n) is malloc(n)
    model.adopt(b, 16);
    return;
  }
  if (size > b.size && !model.has_room(size - b.size)) return;
  const block old = b;
  model.release(b);  // checks the contents; the block itself stays with realloc
  void* q = sp_realloc(old.p, size);
  if (size == 0) {
    expect(q == nullptr, "realloc(p, 0) did not free and return null", q, 0);
    return;
  }
  const std::size_t kept = old.size < size ? old.size : size;
  expect(q != nullptr &&
             sp_check::check_pattern_sparse(q, kept, old.checked, old.seed) == sp_check::kPatternOk,
         "realloc lost the block's contents", q, kept);
  b.p = q;
  b.size = size;
  model.adopt(b, 16);
}

// A short-lived thread allocates blocks that this thread frees later: the new thread's heap is
// created and, at its exit, abandoned with live blocks, so the frees land on orphaned slabs.
void do_thread_alloc(shadow_model& model, reader& in) {
  const unsigned count = 1 + in.byte() % 4;
  std::vector<std::size_t> sizes;
  std::vector<unsigned> slots;
  std::size_t total = 0;
  for (unsigned i = 0; i < count; ++i) {
    slots.push_back(in.byte());
    sizes.push_back(read_size(in));
    free_block(model, model.slot(slots.back()), false);
    total += sizes.back();
  }
  if (!model.has_room(total)) return;
  std::vector<void*> got(count);
  std::thread([&] {
    for (unsigned i = 0; i < count; ++i) got[i] = sp_malloc(sizes[i]);
  }).join();
  for (unsigned i = 0; i < count; ++i) {
    block& b = model.slot(slots[i]);
    free_block(model, b, false);  // two picks of the same slot: keep the last
    b.p = got[i];
    b.size = sizes[i];
    model.adopt(b, 16);
  }
}

void run_op(shadow_model& model, reader& in) {
  const unsigned op = in.byte() % 16;
  block& b = model.slot(in.byte());
  switch (op) {
    case 0:
    case 1:
    case 2:
    case 15:
      do_malloc(model, b, read_size(in));
      break;
    case 3: {
      const unsigned shift = in.byte();
      do_aligned(model, b, shift, read_size(in));
      break;
    }
    case 4:
    case 5:
      free_block(model, b, false);
      break;
    case 6:
      free_block(model, b, true);
      break;
    case 7:
    case 8:
      do_realloc(model, b, read_size(in));
      break;
    case 9: {
      const unsigned count = in.byte();
      do_calloc(model, b, count, read_size(in));
      break;
    }
    case 10:
      if (b.p != nullptr) {
        const block gone = b;
        model.release(b);
        model.add_in_flight(gone.size);
        hand_off(gone, (in.byte() & 1) != 0);
        if (!model.has_room(0)) {
          drain_hand_offs();  // keeps in-flight bytes under the bound too
          model.clear_in_flight();
        }
      }
      break;
    case 11:
      do_thread_alloc(model, in);
      break;
    case 12:
      // A trim may return any idle memory: live blocks must come through untouched.
      if (in.byte() % 4 == 0) {
        sp_trim();
      } else {
        sp_trim_decay();
      }
      break;
    case 13:
      if (b.p != nullptr) model.fill_usable(b);  // the whole usable size is writable
      break;
    case 14:
      if (b.p != nullptr) model.verify(b);
      break;
  }
}

}  // namespace
}  // namespace sp_fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sp_fuzz::shadow_model model;
  sp_fuzz::reader in(data, size);
  while (!in.empty()) sp_fuzz::run_op(model, in);
  for (unsigned i = 0; i < sp_fuzz::shadow_model::kSlots; ++i) {
    sp_fuzz::free_block(model, model.slot(i), i % 2 == 0);
  }
  sp_fuzz::drain_hand_offs();
  return 0;
}
