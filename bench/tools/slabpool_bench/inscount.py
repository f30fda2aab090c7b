"""Instructions per malloc+free pair (issue 2): runs bench/bin/sp_inscount for every allocation
interface and counts only its measured loops. Uses `perf stat -e instructions` when the machine
supports it (two runs with different pair counts, the difference divided by the extra pairs), else
valgrind's callgrind with client requests that zero the counters before each loop and dump them
after it. Both include the loop itself (the 'empty' row shows how much that is)."""

import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from . import common as bc

FULL_SIZES = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
QUICK_SIZES = [16, 64, 256, 1024, 4096]
PATTERNS = ["live1", "alone", "batch"]
PATTERN_TITLES = {
    "live1": "malloc+free of one size, one other block of that size live",
    "alone": "malloc+free of one size, nothing else live",
    "batch": "1000-block allocate-then-free batch, per pair",
}


def perf_works():
    if not bc.have("perf"):
        return False
    r = subprocess.run(["perf", "stat", "-x,", "-e", "instructions", "true"],
                       capture_output=True, text=True)
    return bool(re.match(r"^\d+,", r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""))


def jobs(build_dir, extra=()):
    """(label, group, api, preload) for every interface to count; `extra` = scripts/bench --with
    allocators, (name, path) pairs, counted through malloc like the other preloads."""
    exe = Path(build_dir) / "bench" / "bin" / "sp_inscount"
    apis = subprocess.run([str(exe), "--list"], capture_output=True, text=True).stdout.split()
    allocs, _ = bc.allocators(build_dir, extra)
    out = []
    for a in allocs:
        if a["suffix"] == "":  # reached through malloc: glibc, the preloads, slabpool's shim
            out.append((a["name"], "malloc", "malloc", a["preload"]))
    if "sp" in apis:
        out.append(("slabpool sp_malloc/sp_free", "malloc", "sp", None))
        out.append(("slabpool sp_free_sized", "malloc", "sp_sized", None))
    jemalloc = bc.find_lib("libjemalloc.so.2")
    for api in apis:
        if api.startswith("pmr:"):
            out.append((api[4:], "pmr", api, None))
    if jemalloc:
        # jemalloc cannot be dlopen'ed (static TLS): its resource (mallocx/sdallocx) is found in
        # the process when jemalloc is preloaded.
        out.append(("jemalloc", "pmr", "pmr:jemalloc", jemalloc))
    return exe, out


def count_callgrind(exe, api, preload, sizes, pairs, patterns):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.%p",
               str(exe), "--api", api, "--patterns", ",".join(patterns),
               "--sizes", ",".join(map(str, sizes)), "--pairs", str(pairs)]
        r = bc.run(cmd, preload=preload, timeout=1200)
        if r["rc"] != 0:
            raise RuntimeError(f"callgrind run failed ({api}): {r['err'][-2000:]}")
        counts = {}
        for f in glob.glob(f"{tmp}/cg.*.*"):
            text = Path(f).read_text(errors="replace")
            m = re.search(r"^desc: Trigger: Client Request: (\S+)", text, re.M)
            s = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
            if m and s:
                _, pattern, size, n = m.group(1).split("|")
                counts[(pattern, int(size))] = int(s.group(1)) / int(n)
        return counts


def count_perf(exe, api, preload, sizes, pairs, patterns):
    def total(pattern, size, n):
        cmd = ["perf", "stat", "-x,", "-e", "instructions", str(exe), "--api", api,
               "--patterns", pattern, "--sizes", str(size), "--pairs", str(n)]
        r = bc.run(cmd, preload=preload)
        return int(r["err"].strip().splitlines()[-1].split(",")[0])

    counts = {}
    for pattern in patterns:
        for size in sizes:
            # Startup, warm-up and exit cost the same in both runs and cancel out.
            counts[(pattern, size)] = (total(pattern, size, 2 * pairs) -
                                       total(pattern, size, pairs)) / pairs
    return counts


def measure(build_dir, quick=False, runs=1, progress=None, extra=()):
    """Returns (method, rows); rows are dicts label/group/api/pattern/size/run/instr."""
    exe, todo = jobs(build_dir, extra)
    method = "perf" if perf_works() else "callgrind"
    if method == "callgrind" and not bc.have("valgrind"):
        raise RuntimeError("neither perf instruction counters nor valgrind are available")
    counter = count_perf if method == "perf" else count_callgrind
    sizes = QUICK_SIZES if quick else FULL_SIZES
    pairs = 20000 if quick else 50000
    rows = []
    for run in range(1, runs + 1):
        for label, group, api, preload in todo:
            if progress:
                progress.step(f"inscount {label} ({method}, run {run}/{runs})")
            counts = counter(exe, api, preload, sizes, pairs, PATTERNS)
            if label == "glibc":  # the harness loop alone, once
                counts.update({("empty", 64): counter(exe, api, None, [64], pairs,
                                                      ["empty"])[("empty", 64)]})
            for (pattern, size), instr in counts.items():
                rows.append({"label": label, "group": group, "api": api, "pattern": pattern,
                             "size": size, "run": run, "instr": instr})
    return method, rows


def table(rows, group, pattern):
    """Markdown table: one row per interface, one column per size, then geometric-mean ratios
    against the mimalloc and jemalloc rows of the same group."""
    sel = [r for r in rows if r["group"] == group and r["pattern"] == pattern]
    sizes = sorted({r["size"] for r in sel})
    labels = list(dict.fromkeys(r["label"] for r in sel))
    refs = ("mimalloc", "jemalloc")
    med = {}
    for label in labels:
        for size in sizes:
            s = bc.summarize([r["instr"] for r in sel if r["label"] == label and r["size"] == size])
            med[(label, size)] = s["median"] if s else None
    head = ["interface"] + [fmt_size(s) for s in sizes] + [f"÷ {ref}" for ref in refs]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label in labels:
        cells = [label] + [f"{med[(label, s)]:.0f}" if med[(label, s)] else "–" for s in sizes]
        for ref in refs:
            cells.append(geo_ratio([med[(label, s)] for s in sizes],
                                   [med.get((ref, s)) for s in sizes]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def geo_ratio(values, refs):
    pairs = [(v, r) for v, r in zip(values, refs) if v and r]
    if not pairs:
        return "–"
    prod = 1.0
    for v, r in pairs:
        prod *= v / r
    return f"{prod ** (1 / len(pairs)):.2f}"


def fmt_size(n):
    return f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n} B"


def render(method, rows):
    out = [f"Instructions per malloc+free pair, counted with {method} (loop included; "
           "lower is better; ratio columns are geometric means over the sizes)."]
    empty = [r["instr"] for r in rows if r["pattern"] == "empty"]
    if empty:
        out.append(f"The measuring loop alone costs {min(empty):.1f} instructions per iteration.")
    for group, title in (("malloc", "C interface"), ("pmr", "std::pmr::memory_resource* "
                                                          "(virtual calls included)")):
        for pattern in PATTERNS:
            if any(r["group"] == group and r["pattern"] == pattern for r in rows):
                out += ["", f"**{title}: {PATTERN_TITLES[pattern]}**", "",
                        table(rows, group, pattern)]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(prog="scripts/inscount", description=__doc__)
    ap.add_argument("--build-dir", default=str(bc.ROOT / "build-bench"),
                    help="build directory holding bench/bin/sp_inscount (default: build-bench; "
                         "built with scripts/bench --build-only when missing)")
    ap.add_argument("--quick", action="store_true", help="fewer sizes and pairs")
    ap.add_argument("--json", help="also write the raw rows to this file")
    args = ap.parse_args()
    exe = Path(args.build_dir) / "bench" / "bin" / "sp_inscount"
    if not exe.exists():
        print(f"{exe} missing: building with scripts/bench --build-only", file=sys.stderr)
        subprocess.run([str(bc.ROOT / "scripts" / "bench"), "--build-only", "--build-dir",
                        args.build_dir], check=True)
    _, todo = jobs(args.build_dir)
    method, rows = measure(args.build_dir, args.quick, 1, bc.Progress(len(todo)))
    if args.json:
        bc.write_json(args.json, {"method": method, "rows": rows})
    print(render(method, rows))


if __name__ == "__main__":
    main()
