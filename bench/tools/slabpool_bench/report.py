"""Writes REPORT.md, the plots and summary.json from the raw results of slabpool_bench.run, and
the README summary from summary.json. Every figure is computed from the stored runs: medians with
min-max, ratios to mimalloc and jemalloc, and a warning sign where the runs disagree by more than
WIDE_SPREAD."""

import argparse
import json
import re
import sys
from pathlib import Path

from . import common as bc
from . import inscount as bi
from . import plots
from . import real_programs

WIDE_SPREAD = 0.10  # (max-min)/median above which a figure gets a warning sign
REFS = ("mimalloc", "jemalloc")
README_START, README_END = "<!-- bench-summary:start -->", "<!-- bench-summary:end -->"
SUMMARY_FILE = "summary.json"  # kept in git with REPORT.md and the plots; raw/ is not
SUMMARY_FORMAT = 1  # summary.json layout version


class Agg:
    """Values of all runs keyed by (suite, name, alloc, metric)."""

    def __init__(self, records):
        self.vals, self.order = {}, {}
        for r in records:
            self.vals.setdefault((r["suite"], r["name"], r["alloc"], r["metric"]), []).append(
                r["value"])
            self.order.setdefault(r["suite"], {}).setdefault(r["name"], None)
        self.wide = []

    def s(self, suite, name, alloc, metric):
        return bc.summarize(self.vals.get((suite, name, alloc, metric), []))

    def names(self, suite, pattern=".*"):
        return [n for n in self.order.get(suite, {}) if re.search(pattern, n)]


def fmt(v):
    if v is None:
        return "–"
    a = abs(v)
    return f"{v:.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}" if a >= 1 else f"{v:.3f}"


def matrix(agg, suite, names, columns, metric, higher, scale=1.0, label=lambda n: n):
    """Rows = benchmarks, columns = allocators/resources. A cell: median, then min-max and the
    ratios to the mimalloc and jemalloc cells of the same row (this ÷ reference)."""
    return rows_matrix(agg, suite, [(label(n), n, metric, higher, scale, n) for n in names],
                       columns)


def rows_matrix(agg, suite, rows, columns, first="benchmark"):
    """matrix() with a metric of its own per row: rows = (label, name, metric, higher, scale,
    what the Spread section calls the row)."""
    head = [first] + columns
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for title, name, metric, higher, scale, what in rows:
        stats = {c: agg.s(suite, name, c, metric) for c in columns}
        if not any(stats.values()):
            continue
        meds = {c: s["median"] * scale for c, s in stats.items() if s}
        best = (max if higher else min)(meds, key=meds.get)
        cells = [title]
        for c in columns:
            s = stats[c]
            if not s:
                cells.append("–")
                continue
            text = f"**{fmt(meds[c])}**" if c == best else fmt(meds[c])
            if s["spread"] > WIDE_SPREAD:
                text += " ⚠"
                agg.wide.append(f"{suite} {what} under {c}: runs spread {s['spread']:.0%}")
            ratios = [f"÷{ref[:2]} {meds[c] / meds[ref]:.2f}" for ref in REFS if meds.get(ref)]
            sub = f"{fmt(s['min'] * scale)}–{fmt(s['max'] * scale)}"
            cells.append(text + "<br><sub>" + " · ".join([sub] + ratios) + "</sub>")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


# Big-buffer reuse (issue 13): the workload entries and the rows shown for each.
BIG_BUFFER_VARIANTS = [("big_buffers", "5–25 MiB uniform"),
                       ("big_buffers_wide", "256 KiB–64 MiB log-uniform")]
BIG_BUFFER_ROWS = [  # label, metric, higher is better
    ("time (s)", "seconds", False),
    ("ms per new buffer", "ms_per_buffer", False),
    ("peak RSS (MiB, wait4)", "peak_rss_mib", False),
    ("minor page faults per new buffer", "minflt_per_buffer", False),
    ("RSS at start (MiB)", "start_mib", False),
    ("RSS right after freeing all (MiB)", "after_free_mib", False),
    ("RSS after idle (MiB)", "after_idle_mib", False),
    ("RSS after idle − RSS at start (MiB)", "idle_excess_mib", False),
]


def big_buffers_section(agg, allocs):
    """One table: for each variant, time, peak RSS, faults and RSS at start / after idle."""
    present = [(n, t) for n, t in BIG_BUFFER_VARIANTS if agg.names("workload", f"^{n}$")]
    if not present:
        return []
    rows = [(f"{title}: {label}", name, metric, higher, 1, f"{name} {metric}")
            for name, title in present for label, metric, higher in BIG_BUFFER_ROWS]
    ms = agg.s("workload", present[0][0], allocs[0], "iterations") if allocs else None
    n = f"20 + {ms['median']:.0f}" if ms else "20 + N"
    idle = agg.s("workload", present[0][0], allocs[0], "idle_s") if allocs else None
    idle_s = f"{idle['median']:.1f} s" if idle else "the idle time"
    return [f"### Big-buffer reuse (issue 13): 20 live buffers, {n} fresh zero-initialised "
            "buffers (`std::make_unique<char[]>(n)`, each replacing a random one), then all "
            f"freed and {idle_s} idle; lower is better in every row. Time and faults cover the "
            "first fill and the replacements (faults from getrusage); RSS after idle should come "
            "back to RSS at start", "",
            rows_matrix(agg, "workload", rows, allocs, "variant: figure"), ""]


# Arena per request (issue 13): variants in report order, as the benchmark names them.
ARENA_VARIANTS = [
    ("arena_release", "`slabpool::arena_resource` + `release()`"),
    ("arena_per_request", "`slabpool::arena_resource` per request"),
    ("slabpool", "`slabpool::get_resource()`"),
    ("monotonic_release", "`monotonic_buffer_resource` + `release()`"),
    ("unsync_pool_release", "`unsynchronized_pool_resource` + `release()`"),
    ("new_delete", "`new_delete_resource()`"),
    ("std", "`std::` containers, `operator new`"),
]
ARENA_SHAPES = [("map", "map"), ("mix", "mix")]


def arena_label(name):
    shape, _, variant = name.partition("/")
    return f"{shape}: " + dict(ARENA_VARIANTS).get(variant, variant)


def arena_section(agg, allocs):
    found = agg.names("arena_request")
    names = [f"{s}/{v}" for s, _ in ARENA_SHAPES for v, _ in ARENA_VARIANTS
             if f"{s}/{v}" in found]
    names += [n for n in found if n not in names]
    if not names:
        return []
    return ["### Arena per request (issue 13): µs per request, lower is better. A request "
            "builds its containers on the resource and drops them; `release()` after each where "
            "named. map = `unordered_map<int, pmr::string>` of 200 entries (24–64 characters) + "
            "`vector<int>` of 300; mix = 100 strings grown by appends, a body appended from them, "
            "a `vector<int>` of 300. Columns: the allocator of the process (LD_PRELOAD): it "
            "moves `new_delete`, `std::` and the upstream of the std::pmr resources; the "
            "`slabpool::` rows use the benchmark's linked slabpool in every column. Read down a "
            "column to compare resources", "",
            matrix(agg, "arena_request", names, allocs, "us_per_req", False, 1, arena_label), "",
            "### Arena per request: minor page faults per request (getrusage; lower is better)",
            "", matrix(agg, "arena_request", names, allocs, "minflt_per_req", False, 1,
                       arena_label), ""]


# Many threads (issue 12): one entry per thread count, and the rows shown for each.
MANY_THREADS = [("many_threads_8", 8), ("many_threads_64", 64), ("many_threads_256", 256)]
MANY_THREADS_ROWS = [  # label, metric, higher is better, scale
    ("RSS ÷ live, highest round", "overhead", False, 1),
    ("RSS ÷ live, round 1", "overhead_first", False, 1),
    ("RSS at hold (MiB, highest round)", "rss_hold_mib", False, 1),
    ("alloc+free throughput (M ops/s)", "ops_per_s", True, 1e-6),
]


def many_threads_section(agg, allocs):
    present = [(n, t) for n, t in MANY_THREADS if agg.names("workload", f"^{n}$")]
    if not present:
        return []
    rows = [(f"T = {t}: {label}", name, metric, higher, scale, f"{name} {metric}")
            for name, t in present for label, metric, higher, scale in MANY_THREADS_ROWS]
    first = present[0][0]
    live = agg.s("workload", first, allocs[0], "live_mib") if allocs else None
    rounds = agg.s("workload", first, allocs[0], "rounds") if allocs else None
    per_thread = f"{live['median'] * 1024 / dict(present)[first]:.0f} KiB" if live else "~256 KiB"
    n_rounds = f"{rounds['median']:.0f}" if rounds else "several"
    held = [(t, agg.s("workload", n, allocs[0], "live_mib")) for n, t in present]
    held = ", ".join(f"{fmt(s['median'])} MiB at T = {t}" for t, s in held if s)
    return ["### Many threads (issue 12): T threads (more than the cores: oversubscribed on "
            "purpose, as a thread-per-connection server), each allocating random 16–1024 B blocks (every byte written) and freeing a random held block after "
            f"every second allocation until it holds {per_thread}; every fourth of those frees is "
            "handed to the next thread and freed there. RSS is read while every thread holds its "
            "blocks; RSS ÷ live = (RSS at hold − RSS with the threads started and idle) ÷ the "
            f"bytes requested and held ({held or 'not recorded'}, the same under every "
            f"allocator); {n_rounds} rounds on the same threads, each ending with "
            "everything freed: the highest round and round 1. Lower is better except throughput",
            "", rows_matrix(agg, "workload", rows, allocs, "threads: figure"), ""]


def real_programs_section(agg, allocs, meta):
    names = [n for n in real_programs.PROGRAMS if agg.names("real", f"^{n}$")]
    if not names:
        return []
    label = lambda n: real_programs.LABELS.get(n, n)  # noqa: E731
    rows = [(f"{label(n)}: {title}", n, metric, False, 1, f"{n} {metric}") for n in names
            for title, metric in (("wall time (s)", "wall_s"), ("peak RSS (MiB)", "peak_rss_mib"))]
    runs = meta.get("real_runs", 0)
    paths = meta.get("real_paths", {})
    what = "; ".join(f"{label(n)} = {real_programs.PROGRAMS[n][2]}"
                     + (f" ({paths[n]})" if paths.get(n) else "") for n in names)
    return [f"### Real programs under each allocator (issue 12): LD_PRELOAD on the program "
            f"(glibc: none), median of {runs} interleaved run(s), the allocators' order rotating "
            "from run to run; peak RSS = GNU time's maximum resident set of the program's largest "
            "process; lower is better", "", rows_matrix(agg, "real", rows, allocs,
                                                         "program: figure"), "",
            f"Programs: {what}. The inputs and the driver are tests/preload's "
            "(real_programs.py, workloads/), where the same runs check the outputs against "
            "glibc's.", ""]


def baseline_matrix(agg, suite, names, columns, base, metric, higher):
    """Like matrix(), but each cell's ratio is to `base` measured in the same run: the median of
    the per-run ratios (the runs interleave the implementations, so a loaded machine slows both
    sides of one ratio alike)."""
    head = ["benchmark"] + columns + [base]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        cells, meds = [name], {}
        for c in columns + [base]:
            s = agg.s(suite, name, c, metric)
            meds[c] = s["median"] if s else None
        if not any(v is not None for v in meds.values()):
            continue
        present = {c: v for c, v in meds.items() if v is not None}
        best = (max if higher else min)(present, key=present.get)
        bvals = agg.vals.get((suite, name, base, metric), [])
        for c in columns + [base]:
            s = agg.s(suite, name, c, metric)
            if not s:
                cells.append("–")
                continue
            text = f"**{fmt(s['median'])}**" if c == best else fmt(s["median"])
            if s["spread"] > WIDE_SPREAD:
                text += " ⚠"
                agg.wide.append(f"{suite} {name} under {c}: runs spread {s['spread']:.0%}")
            sub = [f"{fmt(s['min'])}–{fmt(s['max'])}"]
            cvals = agg.vals.get((suite, name, c, metric), [])
            if c != base and bvals and len(cvals) == len(bvals):
                ratios = bc.summarize([v / b for v, b in zip(cvals, bvals) if b])
                if ratios:
                    sub.append(f"÷base {ratios['median']:.2f}")
            cells.append(text + "<br><sub>" + " · ".join(sub) + "</sub>")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


RP_COLUMNS = ["resource_pool", "resource_pool_untimed"]
RP_TABLES = [  # title, metric, higher is better
    ("Resource pools (issue 14): acquire+release throughput (M ops/s); resource_pool (defaults: "
     "idle timeout and max lifetime on, read from the cached clock on acquire and release), "
     "resource_pool_untimed (both off: the hand-written pool's features) vs the hand-written "
     "mutex+condvar+deque pool (base); ÷base = median of the per-run ratios; rows: threads, "
     "max_open (2× threads = nobody waits; threads/4 = most acquires wait); throughput from "
     "the first half of each case, with no latency probe in the loop", "mops", True),
    ("Resource pools: acquire latency p50 (ns, lower is better; every 8th acquire of the second "
     "half of each case timed)",
     "p50_ns", False),
    ("Resource pools: acquire latency p99 (ns, lower is better)", "p99_ns", False),
    ("Resource pools: fairness, ops of the slowest thread ÷ ops of the fastest (1 = even "
     "service, 0 = a thread did nothing: at 64 threads on few cores the scheduler alone can "
     "do that in a short run; counted over both halves)", "fairness", True),
]


def go_pool_section(agg):
    """object_pool against the Go sync.Pool stand-in (issue 14), ratios within each run."""
    names = agg.names("micro_pool")
    if not names:
        return []
    return ["### Object pools vs Go's sync.Pool fast path (M pairs/s): object_pool (std::function "
            "hooks), object_pool_typed (hooks stored by type) vs go_like (base: a per-thread "
            "private slot with inlined reset, bench/common/go_like_pool.hpp); 4KiB_zeroed = the "
            "whole buffer cleared before reuse; 4KiB_reset clears its first 256 bytes with "
            "16-byte stores, as Go's compiler does (since 6ea117a); ÷base = median of the "
            "per-run ratios", "",
            baseline_matrix(agg, "micro_pool", names, ["object_pool", "object_pool_typed"],
                            "go_like", "mops", True), "",
            *go_sync_pool_table(agg, names)]


def go_sync_pool_table(agg, names):
    """object_pool next to Go's real sync.Pool (bench/go, Go's testing.B), when go was found."""
    if not any(k[0] == "micro_pool" and k[2] == "go_sync_pool" for k in agg.vals):
        return []
    return ["### Object pools vs Go's real sync.Pool (ns per get+put, lower is better; threads:2 "
            "= aggregate over both threads, Go: two goroutines with GOMAXPROCS=2): go_sync_pool = "
            "Go's testing.B on bench/go/syncpool_test.go, run right after the C++ pools in each "
            "run; ÷base = median of the per-run ratios (below 1: object_pool is faster)", "",
            baseline_matrix(agg, "micro_pool", names, ["object_pool", "object_pool_typed"],
                            "go_sync_pool", "ns_op", False), ""]


def resource_pool_section(agg):
    names = agg.names("resource_pool")
    md = []
    for title, metric, higher in RP_TABLES if names else []:
        md += [f"### {title}", "", baseline_matrix(agg, "resource_pool", names, RP_COLUMNS,
                                                   "mutex_deque", metric, higher), ""]
    return md


def slabpool_column(allocs):
    return next((a for a in allocs if a.startswith("slabpool")), None)


def ins_stats(ins_rows, group, label, pattern, size):
    return bc.summarize([r["instr"] for r in ins_rows if r["group"] == group and
                         r["label"] == label and r["pattern"] == pattern and r["size"] == size])


HEADLINES = [  # title, suite, name, metric, higher is better, unit, scale
    ("malloc+free pair, 64 B", "micro_malloc", "pair/64", "mops", True, "M pairs/s", 1),
    ("1000-block batch, 1 KiB", "micro_malloc", "batch1000/1024", "mops", True, "M pairs/s", 1),
    ("random sizes, 1000 live", "micro_malloc", "random_live/1000", "mops", True, "M ops/s", 1),
    ("cross-thread free, 64 B", "micro_malloc", "cross_thread/64", "mops", True, "M ops/s", 1),
    ("2-thread contention", "micro_malloc", "contention/256/threads:2", "mops", True, "M ops/s", 1),
    ("server-like churn", "workload", "churn", "ops_per_s", True, "M ops/s", 1e-6),
    ("producer/consumer pipeline", "workload", "pipeline", "messages_per_s", True, "M msg/s", 1e-6),
    ("fragmentation: RSS ÷ live", "workload", "fragmentation", "overhead", False, "×", 1),
    ("churn peak RSS", "workload", "churn", "peak_rss_mib", False, "MiB", 1),
    ("burst 64 B: RSS after idle", "workload", "burst_idle/64", "after_idle_mib", False, "MiB", 1),
    ("big buffers 5–25 MiB: time per new buffer", "workload", "big_buffers", "ms_per_buffer",
     False, "ms", 1),
    # A name per column: slabpool's arena against what the others' users would take.
    ("arena per request + release() (others: monotonic_buffer_resource)", "arena_request",
     {"slabpool": "map/arena_release", "*": "map/monotonic_release"}, "us_per_req", False, "µs",
     1),
]


MEMORY = [  # title, suite, name, metric: RSS ÷ live bytes of each workload that knows its live bytes
    ("fragmentation: after refill", "workload", "fragmentation", "overhead"),
    ("many threads, T = 8: while holding", "workload", "many_threads_8", "overhead"),
    ("many threads, T = 64: while holding", "workload", "many_threads_64", "overhead"),
    ("many threads, T = 256: while holding", "workload", "many_threads_256", "overhead"),
    ("burst 64 B: peak, all live", "workload", "burst_idle/64", "overhead"),
]


def headline_name(name, alloc):
    """A headline's benchmark name for one column: `name`, or from a dict {"slabpool": .., "*": ..}
    (the slabpool key serves every slabpool column)."""
    if not isinstance(name, dict):
        return name
    return name["slabpool"] if alloc.startswith("slabpool") and "slabpool" in name else name["*"]


def headline_cells(stats_by_alloc, scale=1.0):
    """{alloc: summarize() result or None} -> {"median"|"min"|"max": {alloc: value}}."""
    cells = {"median": {}, "min": {}, "max": {}}
    for a, s in stats_by_alloc.items():
        if s:
            for k in cells:
                cells[k][a] = s[k] * scale
    return cells


def target_rows(ins_rows):
    """Issue 2's instruction targets next to what was counted (max over the three patterns)."""
    specs = [("C API sp_malloc/sp_free", "malloc", "slabpool sp_malloc/sp_free", 45),
             ("slabpool::resource", "pmr", "slabpool", 60),
             ("slabpool::arena_resource", "pmr", "slabpool_arena", 50)]
    rows = []
    for title, group, label, target in specs:
        sel = [r for r in ins_rows if r["group"] == group and r["label"] == label and
               r["pattern"] in bi.PATTERNS]
        rows.append({"interface": title, "target_small": target, "target_4k": 80,
                     "worst_small": max((r["instr"] for r in sel if r["size"] <= 256),
                                        default=None),
                     "worst_4k": max((r["instr"] for r in sel if r["size"] <= 4096),
                                     default=None)})
    return rows


def build_summary(agg, meta, allocs, ins_rows, out):
    """The figures the README summary and the report's Summary and Instruction targets tables are
    rendered from; written to <report>/summary.json, the one data file a report keeps in git."""
    headlines = []
    for title, suite, name, metric, higher, unit, scale in HEADLINES:
        stats = {a: agg.s(suite, headline_name(name, a), a, metric) for a in allocs}
        headlines.append({"title": title, "unit": unit, "higher": higher, "suite": suite,
                          "name": name, "metric": metric, **headline_cells(stats, scale)})
    for pattern, title in (("live1", "instructions/pair 64 B, one live"),
                           ("batch", "instructions/pair 64 B, 1000 batch")):
        stats = {a: ins_stats(ins_rows, "malloc", "slabpool sp_malloc/sp_free"
                              if a == "slabpool-linked" else a, pattern, 64) for a in allocs}
        headlines.append({"title": title, "unit": "instr", "higher": False, "suite": "inscount",
                          "name": f"{pattern}/64", "metric": "instr", **headline_cells(stats)})
    memory = []
    for title, suite, name, metric in MEMORY:
        stats = {a: agg.s(suite, name, a, metric) for a in allocs}
        if any(stats.values()):
            memory.append({"title": title, "unit": "×", "higher": False, "suite": suite,
                           "name": name, "metric": metric, **headline_cells(stats)})
    where = out.relative_to(bc.ROOT) if out.is_relative_to(bc.ROOT) else out
    return {
        "format": SUMMARY_FORMAT,
        "generated_by": "scripts/bench (bench/tools/slabpool_bench/report.py)",
        "report": str(where),
        "commit": meta["commit"], "dirty": meta["dirty"], "date": meta["date"],
        "time": meta["time"], "mode": meta["mode"], "runs": meta["runs"],
        "duration_s": meta["duration_s"], "inscount_method": meta["inscount_method"],
        "machine": {k: meta.get(k) for k in ("cpu", "cores", "mem_gib", "kernel",
                                             "loadavg_1min", "compiler")},
        "allocators": allocs, "notes": meta["notes"], "failed_steps": len(meta["failures"]),
        "only": meta.get("only"),
        "wide_spread_limit": WIDE_SPREAD, "wide_spread_figures": 0,  # set once the tables exist
        "headlines": headlines, "memory": memory,
        "instruction_targets": target_rows(ins_rows),
    }


def summary_table(summary, key="headlines", first="metric (median of runs)"):
    """The Summary table (key "headlines") or the memory block (key "memory", absent from
    summaries written before it existed: then no table)."""
    allocs = summary["allocators"]
    sp = slabpool_column(allocs)
    head = [first, "unit"] + allocs
    if sp:
        head += [f"{sp} ÷ mimalloc", f"{sp} ÷ jemalloc"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    if not summary.get(key):
        return ""
    for h in summary[key]:
        meds, higher = h["median"], h["higher"]
        if not meds:
            continue
        best = (max if higher else min)(meds, key=meds.get)
        cells = [h["title"] + (" ↑" if higher else " ↓"), h["unit"]]
        cells += [("**" + fmt(meds[a]) + "**") if a == best else fmt(meds.get(a)) for a in allocs]
        if sp:
            for ref in REFS:
                ok = meds.get(sp) and meds.get(ref)
                cells.append(f"{meds[sp] / meds[ref]:.2f}" if ok else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_table(summary):
    lines = ["| interface | target 16–256 B | worst 16–256 B | target ≤ 4 KiB | worst ≤ 4 KiB |",
             "|---|---|---|---|---|"]
    for r in summary["instruction_targets"]:
        title, target = r["interface"], r["target_small"]
        if r["worst_small"] is None:
            lines.append(f"| {title} | ≤ {target} | not measured | ≤ 80 | not measured |")
            continue
        mark = lambda v, t: f"{v:.0f} " + ("✓" if v <= t else "✗")  # noqa: E731
        lines.append(f"| {title} | ≤ {target} | {mark(r['worst_small'], target)} | "
                     f"≤ {r['target_4k']} | {mark(r['worst_4k'], r['target_4k'])} |")
    return "\n".join(lines)


MEMORY_TITLE = ("Memory under load (issue 12): resident memory ÷ live bytes (the sizes the "
                "program requested and still holds), median of runs, lower is better, bold = "
                "least")


def memory_block(summary):
    """The memory block of the Summary and of the README summary (empty without figures)."""
    table = summary_table(summary, "memory", "workload: when RSS is read")
    return [MEMORY_TITLE + ":", "", table] if table else []


def readme_summary(summary):
    """The text scripts/bench --update-readme puts between the README's bench-summary markers."""
    m = summary["machine"]
    text = [f"Latest `scripts/bench` summary ({summary['date']}, {summary['commit']}, "
            f"{summary['mode']} mode, {summary['runs']} runs, {m['cpu']} × {m['cores']} cores); "
            "medians, ↑ higher is better, ↓ lower is better; full report: "
            f"`{summary['report']}/REPORT.md`.", "", summary_table(summary)]
    memory = memory_block(summary)
    if memory:
        text += [""] + memory
    text += [f"\nNote: {n}" for n in summary["notes"]]
    wide = summary["wide_spread_figures"]
    if wide:
        text.append(f"\nNote: {wide} figures of the report had runs spreading more than "
                    f"{summary['wide_spread_limit']:.0%} (listed under Spread in the report).")
    load = m.get("loadavg_1min")
    if load is not None and load > 0.5:
        text.append(f"\nWarning: load average {load:.2f} when the run started: timings disturbed.")
    return "\n".join(text) + "\n"


def header(meta):
    v = meta["versions"]
    how = {a["name"]: ("LD_PRELOAD " + a["preload"] + ", added with --with" if a.get("with") else
                       "LD_PRELOAD " + Path(a["preload"]).name if a["preload"] else
                       "linked (sp_malloc, operator new)" if a["suffix"] else "no preload")
           for a in meta["allocators"]}
    runs_note = (f"**--quick run: {meta['runs']} interleaved runs with shrunk sizes and durations; "
                 "a smoke check, not a result to quote.**" if meta["mode"] == "quick" else
                 f"{meta['runs']} interleaved runs.")
    lines = [
        f"# slabpool benchmark report — {meta['date']} — {meta['commit']}"
        + (" (uncommitted changes)" if meta["dirty"] else ""),
        "",
        f"- Machine: {meta['cpu']}, {meta['cores']} cores, {meta['mem_gib']} GiB, "
        f"Linux {meta['kernel']}",
        f"- Compiler: {meta['compiler']}; build: Release (-O3)",
        "- Libraries (Debian): " + ", ".join(f"{k} {val}" for k, val in sorted(v.items())),
        "- Allocators: " + ", ".join(f"{k} ({h})" for k, h in how.items()),
        f"- Method: {runs_note} Each run executes every suite under every allocator in turn "
        "(A B C D E, then again), so drift hits all alike. Cells show the **median**, then "
        "min–max over the runs and the ratio to mimalloc (÷mi) and jemalloc (÷je): "
        "this ÷ reference. Bold = best in the row. ⚠ = runs spread more than "
        f"{WIDE_SPREAD:.0%}. Peak RSS from wait4(). Instruction counts: "
        f"{meta['inscount_method']} (deterministic; loop included).",
        f"- Total measuring time: {meta['duration_s'] / 60:.1f} min. Generated {meta['time']}.",
    ]
    for note in meta["notes"]:
        lines.append(f"- Note: {note}")
    load = meta.get("loadavg_1min")
    if load is not None and load > 0.5:
        lines.append(f"- **Warning: the machine was busy when the run started (1-minute load "
                     f"average {load:.2f} on {meta['cores']} cores); other processes disturb the "
                     "timings, most of all the 2-thread benchmarks. Rerun on an idle machine.**")
    return lines


def make_plots(agg, allocs, resources, ins_rows, meta, out):
    made = []
    panels = []
    for title, suite, name, metric, scale, unit, cols in [
            ("churn", "workload", "churn", "ops_per_s", 1e-6, "M ops/s", allocs),
            ("pipeline", "workload", "pipeline", "messages_per_s", 1e-6, "M msg/s", allocs),
            ("fragmentation", "workload", "fragmentation", "ops_per_s", 1e-6, "M ops/s", allocs),
            ("many threads, T = 256", "workload", "many_threads_256", "ops_per_s", 1e-6, "M ops/s",
             allocs),
            ("pair 64 B", "micro_malloc", "pair/64", "mops", 1, "M pairs/s", allocs),
            ("cross-thread 64 B", "micro_malloc", "cross_thread/64", "mops", 1, "M ops/s", allocs),
            ("pmr pair 64 B", "micro_pmr", "pmr_pair/64", "mops", 1, "M pairs/s", resources)]:
        bars = []
        for c in cols:
            s = agg.s(suite, name, c, metric)
            if s:
                bars.append((c, s["median"] * scale, s["min"] * scale, s["max"] * scale))
        if bars:
            panels.append((title, unit, bars))
    if plots.throughput_bars(panels, out / "throughput.png"):
        made.append(("Throughput", "throughput.png"))
    panels = []
    for title, suite, name, metric in MEMORY:
        bars = [(c, s["median"], s["min"], s["max"]) for c in allocs
                for s in [agg.s(suite, name, c, metric)] if s]
        if bars:
            panels.append((title, "RSS ÷ live", bars))
    if plots.throughput_bars(panels, out / "memory.png", "Memory under load: RSS ÷ live bytes, "
                             "median of the runs, whiskers = min-max (lower is better)"):
        made.append(("Memory under load: RSS ÷ live bytes", "memory.png"))
    for group, fname, heading in (("malloc", "instructions_malloc.png", "malloc/free interfaces"),
                                  ("pmr", "instructions_pmr.png", "pmr resources")):
        series = {}
        for r in ins_rows:
            if r["group"] == group and r["pattern"] in bi.PATTERNS and r["run"] == 1:
                series.setdefault(r["pattern"], {}).setdefault(r["label"], []).append(
                    (r["size"], r["instr"]))
        if plots.instructions_vs_size(series, bi.PATTERN_TITLES, out / fname,
                                            "Instructions per pair, " + heading):
            made.append(("Instructions per pair, " + heading, fname))
    last = meta["runs"]
    csvs = {a: out / "raw" / "timeline" / f"{a}-run{last}.csv" for a in allocs}
    csvs = {a: p for a, p in csvs.items() if p.exists()}
    if plots.rss_timeline(csvs, out / "rss_timeline.png",
                                f"burst then idle, RSS sampled every 50 ms (run {last})"):
        made.append(("RSS timeline of burst-then-idle", "rss_timeline.png"))
    return made


def write_report(out):
    meta = json.loads((out / "raw" / "meta.json").read_text())
    agg = Agg(json.loads((out / "raw" / "results.json").read_text()))
    ins = json.loads((out / "raw" / "inscount.json").read_text())
    allocs = [a["name"] for a in meta["allocators"]]
    resources = [n for n in ("slabpool", "slabpool_arena", "sync_pool", "unsync_pool",
                             "monotonic", "new_delete", "mimalloc", "jemalloc")
                 if any(k[2] == n for k in agg.vals if k[0] == "micro_pmr")]
    summary = build_summary(agg, meta, allocs, ins["rows"], out)
    md = header(meta)
    md += ["", "## Summary", "", summary_table(summary), ""]
    md += [*memory_block(summary), ""] if summary["memory"] else []
    md += ["## Instruction targets (issue 2)", "", targets_table(summary), ""]
    sections = [
        ("malloc+free pair (M pairs/s, higher is better)", "micro_malloc", "^pair/", "mops", True,
         1, allocs),
        ("1000-block batch (M pairs/s)", "micro_malloc", "^batch1000/", "mops", True, 1, allocs),
        ("Random sizes with a live working set, cross-thread free, 2-thread contention (M ops/s)",
         "micro_malloc", "^(random_live|cross_thread|contention)", "mops", True, 1, allocs),
        ("pmr resources: allocate+deallocate through memory_resource* (M pairs/s); "
         "pmr_shared = 2 threads sharing one resource", "micro_pmr", "^pmr_(pair|batch|shared)",
         "mops", True, 1, resources),
        ("pmr containers: time per iteration (ms, lower is better)", "micro_pmr",
         "^pmr_(vector|unordered|list|string|map)", "iter_ms", False, 1, resources),
        ("Object pools (issue 7): get+put of one object (M pairs/s); glibc/jemalloc/mimalloc = "
         "new+delete of the same object under that allocator; mutex_freelist = a std::mutex "
         "around a free list; rows: object/threads sharing the pool", "micro_pool", ".",
         "mops", True, 1, ["object_pool", "object_pool_typed", "go_like", "go_sync_pool",
                           "mutex_freelist", "glibc", "jemalloc", "mimalloc"]),
        ("Workload throughput (M ops/s; pipeline: M messages/s)", "workload",
         "^(churn|fragmentation)$", "ops_per_s", True, 1e-6, allocs),
        ("", "workload", "^pipeline$", "messages_per_s", True, 1e-6, allocs),
        ("Workload peak RSS (MiB, wait4; lower is better)", "workload",
         "^(churn|pipeline|fragmentation|burst_idle)$", "peak_rss_mib", False, 1, allocs),
        ("Fragmentation: RSS after refill ÷ live bytes (lower is better)", "workload",
         "^fragmentation$", "overhead", False, 1, allocs),
        ("Burst then idle: peak RSS ÷ bytes allocated, all of them live at the peak (lower is "
         "better)", "workload", "^burst_idle/", "overhead", False, 1, allocs),
        ("Burst then idle: RSS (MiB) right after freeing everything", "workload", "^burst_idle/",
         "after_free_mib", False, 1, allocs),
        ("Burst then idle: RSS (MiB) at the end of the idle period", "workload", "^burst_idle/",
         "after_idle_mib", False, 1, allocs),
    ]
    md += ["## Details", ""]
    for title, suite, pattern, metric, higher, scale, cols in sections:
        names = agg.names(suite, pattern)
        if names:
            md += ([f"### {title}", ""] if title else []) + [
                matrix(agg, suite, names, cols, metric, higher, scale), ""]
    md += many_threads_section(agg, allocs)
    md += real_programs_section(agg, allocs, meta)
    md += big_buffers_section(agg, allocs)
    md += arena_section(agg, allocs)
    md += go_pool_section(agg)
    md += resource_pool_section(agg)
    if ins["rows"]:  # a partial run (--only) may leave the counts out
        md += ["### Instructions per pair", "", bi.render(ins["method"], ins["rows"]), ""]
    made = make_plots(agg, allocs, resources, ins["rows"], meta, out)
    md += ["## Plots", ""] + [f"![{t}]({f})" for t, f in made] + [""]
    md += ["## Spread", ""]
    md += ([f"- ⚠ {w}" for w in dict.fromkeys(agg.wide)] or
           [f"No figure's runs spread more than {WIDE_SPREAD:.0%}."]) + [""]
    if meta["failures"]:
        md += ["## Failed steps", ""]
        md += [f"- {f['what']} under {f['alloc']} (run {f['run']}): exit {f['rc']}: "
               f"`{f['stderr'][-200:].strip()}`" for f in meta["failures"]] + [""]
    md += ["## Data", "", "`summary.json` beside this report holds the figures of the Summary and "
           "Instruction targets tables (and of the README summary). The raw measurements stay out "
           "of git, in `raw/` on the machine that ran `scripts/bench`: `raw/results.csv` and "
           "`raw/results.json` (every run and metric), `raw/micro_*/*.json` (Google Benchmark "
           "output), `raw/workloads/*.txt` (RESULT lines), `raw/timeline/*.csv` (RSS every "
           "50 ms), `raw/inscount.json`, `raw/meta.json`; `scripts/bench --report-only <dir>` "
           "renders this report again from them.", ""]
    (out / "REPORT.md").write_text("\n".join(md))
    summary["wide_spread_figures"] = len(dict.fromkeys(agg.wide))
    write_summary(out, summary)
    return summary


def write_summary(out, summary):
    """One key per line, one table row per line: small, and a rerun diffs row by row."""
    def dump(v):
        return json.dumps(v, ensure_ascii=False)

    lines = []
    for key, value in summary.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n".join("  " + dump(row) for row in value)
            lines.append(f" {dump(key)}: [\n{rows}\n ]")
        else:
            lines.append(f" {dump(key)}: {dump(value)}")
    (out / SUMMARY_FILE).write_text("{\n" + ",\n".join(lines) + "\n}\n")


def read_summary(out):
    summary = json.loads((out / SUMMARY_FILE).read_text())
    if summary.get("format") != SUMMARY_FORMAT:
        sys.exit(f"{out / SUMMARY_FILE}: format {summary.get('format')}, this script reads "
                 f"format {SUMMARY_FORMAT}")
    return summary


def update_readme(summary):
    (bc.ROOT / "bench" / "reports").mkdir(parents=True, exist_ok=True)
    (bc.ROOT / "bench" / "reports" / "latest-summary.md").write_text(summary)
    readme = bc.ROOT / "README.md"
    text = readme.read_text() if readme.exists() else ""
    if README_START in text and README_END in text:
        before, rest = text.split(README_START, 1)
        after = rest.split(README_END, 1)[1]
        readme.write_text(before + README_START + "\n" + summary + README_END + after)
        return "README.md (between the bench-summary markers) and bench/reports/latest-summary.md"
    return "bench/reports/latest-summary.md (README.md has no bench-summary markers)"


def main():
    ap = argparse.ArgumentParser(prog="python3 -m slabpool_bench.report", description=__doc__)
    ap.add_argument("out", help="report directory holding raw/ from slabpool_bench.run")
    ap.add_argument("--update-readme", action="store_true",
                    help="also write the README summary from the report's summary.json")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    if (out / "raw" / "meta.json").exists():
        write_report(out)
        print(f"report: {out / 'REPORT.md'}, {out / SUMMARY_FILE}")
    elif args.update_readme and (out / SUMMARY_FILE).exists():
        # A report from git: raw/ is not there, REPORT.md and the plots stay as they are.
        print(f"no {out / 'raw'}: REPORT.md and plots left as they are", file=sys.stderr)
    else:
        sys.exit(f"{out / 'raw' / 'meta.json'} missing: raw measurements are not kept in git; "
                 "run scripts/bench to measure again")
    if args.update_readme:
        summary = read_summary(out)
        if summary.get("only"):
            sys.exit(f"{out}: a partial run (--only '{summary['only']}'); the README summary "
                     "comes from a whole run")
        text = readme_summary(summary)
        print("summary written to " + update_readme(text))
        print(text)


if __name__ == "__main__":
    main()
