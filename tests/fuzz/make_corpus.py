#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz target (tests/fuzz/corpus/): small programs that each reach
one path (every size range, every alignment, realloc chains, calloc, cross-thread frees, threads,
trims) so the fuzzer starts from inputs that already cover the allocator. The encoding mirrors
run_op in fuzz_alloc.cpp: [opcode, slot, arguments...]; a size is [range (mod 32), low byte,
high byte].

Usage: tests/fuzz/make_corpus.py [output directory]   (default: tests/fuzz/corpus next to it)
"""
import os
import random
import sys

MALLOC, ALIGNED, FREE, FREE_SIZED, REALLOC, CALLOC = 0, 3, 4, 6, 7, 9
HANDOFF, THREAD, TRIM, FILL_USABLE, VERIFY = 10, 11, 12, 13, 14


def size(rng_range, value):
    return [rng_range, value & 0xFF, (value >> 8) & 0xFF]


def malloc(slot, r, v):
    return [MALLOC, slot] + size(r, v)


def aligned(slot, shift, r, v):
    return [ALIGNED, slot, shift] + size(r, v)


def realloc(slot, r, v):
    return [REALLOC, slot] + size(r, v)


def calloc(slot, count, r, v):
    return [CALLOC, slot, count] + size(r, v)


def programs():
    # Every size range, allocated, filled to its usable size, checked and freed both ways.
    for r in range(32):
        yield f"range-{r:02d}", (malloc(0, r, 1000) + malloc(1, r, 65535) + [FILL_USABLE, 0] +
                                 [VERIFY, 0, FREE, 0, FREE_SIZED, 1])
    # Every alignment shift, including the refused ones (22, 23).
    for shift in range(24):
        yield f"aligned-{shift:02d}", (aligned(0, shift, 3, 100) + aligned(1, shift, 27, 500) +
                                       aligned(2, shift, 0, 0) + [FREE_SIZED, 0, FREE, 1])
    # realloc growing through every path and shrinking back, then to 0 (frees).
    chain = [(3, 10), (17, 3000), (23, 60000), (27, 30000), (29, 100), (30, 40000), (31, 4)]
    grow = [b for r, v in chain for b in realloc(0, r, v)]
    shrink = [b for r, v in reversed(chain) for b in realloc(0, r, v)]
    yield "realloc-grow", grow + [VERIFY, 0]
    yield "realloc-shrink", grow + shrink + realloc(0, 0, 0)
    yield "realloc-null", realloc(5, 2, 50) + realloc(5, 0, 0) + realloc(5, 12, 9)
    yield "realloc-usable", malloc(0, 2, 17) + [FILL_USABLE, 0] + realloc(0, 2, 40)
    # calloc of every range, and the n * size overflow.
    yield "calloc", [b for r in range(0, 32, 2) for b in calloc(r // 2, r * 3, r, 4000)]
    yield "calloc-overflow", calloc(0, 255, 3, 9) + calloc(1, 255, 13, 9)
    # Cross-thread frees of every range, sized and not.
    yield "handoff", [b for r in range(0, 32, 2) for b in malloc(r, r, 777) + [HANDOFF, r, r & 1]]
    yield "handoff-reuse", ([b for i in range(8) for b in malloc(i, 2, i * 13)] +
                            [b for i in range(8) for b in [HANDOFF, i, 0]] +
                            [b for i in range(8) for b in malloc(i, 2, i * 13)])
    # Threads that allocate blocks this thread frees (orphaned slabs).
    yield "thread", ([THREAD, 0, 3] + [0] + size(2, 30) + [1] + size(23, 5000) + [2] +
                     size(27, 100) + [3] + size(31, 8) + [FREE, 0, FREE_SIZED, 1, HANDOFF, 2, 0])
    # Trims between allocations: live blocks survive both kinds.
    yield "trim", (malloc(0, 2, 5) + malloc(1, 27, 5) + [FREE, 1, TRIM, 0, 0] + malloc(1, 31, 8) +
                   [FREE, 1, TRIM, 0, 1, VERIFY, 0])
    # Churn in one class, the fast path's lists.
    yield "churn", [b for i in range(64) for b in malloc(i % 6, 1, 40) + [FREE, (i * 5) % 6]]
    # Seeded random mixes of every operation.
    rng = random.Random(6)
    for k in range(8):
        yield f"mix-{k}", [rng.randrange(256) for _ in range(rng.randrange(64, 400))]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    os.makedirs(out, exist_ok=True)
    count = 0
    for name, data in programs():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes(data))
        count += 1
    print(f"make_corpus: wrote {count} inputs to {out}")


if __name__ == "__main__":
    main()
