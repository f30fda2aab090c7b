"""Runs every benchmark of scripts/bench with the allocators interleaved (A B C D E, repeated) and
stores raw results under <out>/raw: Google Benchmark JSON, workload RESULT lines, RSS timelines,
instruction counts, plus results.json/results.csv (one row per run and metric) and meta.json."""

import argparse
import csv
import json
import re
import shutil
import sys
import time
from pathlib import Path

from . import common as bc
from . import inscount
from . import real_programs

# Per-mode settings. quick shrinks sizes and durations and runs fewer repetitions; the report
# says so in its header.
MODES = {
    "full": {
        "runs": 5, "inscount_runs": 2, "min_time": "0.2", "resource_pool_seconds": "0.4",
        "malloc_filter": ".*",
        "pmr_sizes": "16|64|256|1024|4096", "container_n": "[0-9]+",
        "workloads": {
            "churn": ["--seconds", "2"],
            "pipeline": ["--messages", "4e6"],
            "fragmentation": ["--total-mib", "256"],
            "burst_idle": ["--total-mib", "1024", "--idle", "3"],
            # Issue 13: 500 replacements (the program does 2000: the per-buffer figures
            # are the same, and 2000 would add about a quarter of an hour on 2 cores).
            "big_buffers": ["--iterations", "500", "--idle", "1.2"],
            "big_buffers_wide": ["--iterations", "500", "--sizes", "256K-64M", "--dist", "log",
                                 "--idle", "1.2"],
            # Issue 12: T threads with ~256 KiB live each, RSS read while all hold their blocks;
            # 10 rounds take about a second at 256 threads on 2 cores.
            "many_threads_8": ["--threads", "8", "--rounds", "10"],
            "many_threads_64": ["--threads", "64", "--rounds", "10"],
            "many_threads_256": ["--threads", "256", "--rounds", "10"],
        },
        "arena_min_time": "0.2",
        # Real programs under each allocator (issue 12): about 17 s per allocator and run on
        # 2 cores, so 3 runs of 5 allocators add about 4 minutes.
        "real_runs": 3, "real_programs": ["python3", "gxx", "perl", "sort", "sqlite3", "redis"],
    },
    "quick": {
        "runs": 3, "inscount_runs": 1, "min_time": "0.03", "resource_pool_seconds": "0.1",
        "malloc_filter": "^(pair|batch1000)/(16|64|256|1024|4096|65536)$|^random_live/1000$|"
                         "^cross_thread/64/|^contention/",
        "pmr_sizes": "16|64|256", "container_n": "[0-9]{1,5}",  # no 1e5/1e6 containers
        "workloads": {
            "churn": ["--seconds", "0.4"],
            "pipeline": ["--messages", "5e5"],
            "fragmentation": ["--total-mib", "48"],
            "burst_idle": ["--total-mib", "96", "--idle", "0.4"],
            "big_buffers": ["--iterations", "40", "--idle", "1.2"],
            "big_buffers_wide": ["--iterations", "40", "--sizes", "256K-64M", "--dist", "log",
                                 "--idle", "1.2"],
            "many_threads_8": ["--threads", "8", "--rounds", "5"],
            "many_threads_64": ["--threads", "64", "--rounds", "5"],
            "many_threads_256": ["--threads", "256", "--rounds", "5"],
        },
        "arena_min_time": "0.03",
        # One run of the three quickest programs (about 4 s per allocator).
        "real_runs": 1, "real_programs": ["perl", "sort", "sqlite3"],
    },
}

# Workload entries that run another entry's program with other options (the program's name is
# sp_wl_<program>; by default the entry's own name).
WORKLOAD_PROGRAM = {"big_buffers_wide": "big_buffers", "many_threads_8": "many_threads",
                    "many_threads_64": "many_threads", "many_threads_256": "many_threads"}
# Google Benchmark user counters recorded as metrics of the same name, where a suite has them.
GBENCH_COUNTERS = ("minflt_per_req",)


def pmr_filter(cfg, resource_re):
    """Regex selecting the pmr benchmarks of the mode for the resources matching resource_re."""
    sizes = cfg["pmr_sizes"]
    parts = [f"^pmr_pair/({resource_re})/({sizes})$", f"^pmr_batch1000/({resource_re})/64$",
             f"^pmr_shared/({resource_re})/",
             f"^pmr_(vector|unordered_map|list|string|map)/({resource_re})/{cfg['container_n']}$"]
    return "|".join(parts)


class Runner:
    def __init__(self, build_dir, out_dir, mode, extra=(), only=None):
        self.build = Path(build_dir)
        self.bin = self.build / "bench" / "bin"
        self.out = Path(out_dir)
        self.raw = self.out / "raw"
        self.cfg = MODES[mode]
        self.mode = mode
        self.extra = list(extra)  # --with NAME=LIB: (name, path) pairs
        self.only = re.compile(only) if only else None
        self.records, self.failures = [], []
        self.allocs, self.notes = bc.allocators(self.build, self.extra)
        self.meta = bc.machine_info(self.build)  # at the start: the commit that was measured
        if only:
            self.notes.append(f"partial run (--only '{only}'): only the steps it matches were "
                              "measured")

    def wanted(self, step):
        """Whether --only (a regex searched in names like micro_malloc, micro_pmr, micro_pool,
        go_sync_pool, resource_pool, arena_request, workload:<name>, real:<program>, inscount)
        lets this step run; every step runs without --only."""
        return self.only is None or bool(self.only.search(step))

    def record(self, suite, name, alloc, run, metric, value):
        self.records.append({"suite": suite, "name": name, "alloc": alloc, "run": run,
                             "metric": metric, "value": value})

    def fail(self, what, alloc, run, r):
        self.failures.append({"what": what, "alloc": alloc, "run": run, "rc": r["rc"],
                              "stderr": r["err"][-1500:]})
        print(f"  FAILED (rc={r['rc']}): {r['err'][-300:]}", file=sys.stderr, flush=True)

    def gbench(self, suite, exe, alloc_label, preload, run, bench_filter, name_fn, min_time=None):
        path = self.raw / suite / f"{alloc_label}-run{run}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [str(exe), f"--benchmark_filter={bench_filter}", "--benchmark_format=json",
               f"--benchmark_min_time={min_time or self.cfg['min_time']}",
               f"--benchmark_out={path}"]
        r = bc.run(cmd, preload=preload, timeout=900)
        if r["rc"] != 0:
            return self.fail(f"{suite} {exe.name}", alloc_label, run, r)
        for b in json.loads(path.read_text())["benchmarks"]:
            if b.get("run_type", "iteration") != "iteration" or "error_occurred" in b:
                continue
            name, alloc = name_fn(b["name"], alloc_label)
            unit = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
            self.record(suite, name, alloc, run, "mops", b["items_per_second"] / 1e6)
            self.record(suite, name, alloc, run, "iter_ms", b["real_time"] * unit / 1e6)
            if suite == "micro_pool":  # ns per get+put over all threads, like Go's ns/op
                self.record(suite, name, alloc, run, "ns_op", 1e3 / (b["items_per_second"] / 1e6))
            if suite == "arena_request":  # one iteration is one request
                self.record(suite, name, alloc, run, "us_per_req", b["real_time"] * unit / 1e3)
            for counter in GBENCH_COUNTERS:
                if counter in b:
                    self.record(suite, name, alloc, run, counter, b[counter])
            if "INSTRUCTIONS" in b:  # only when perf counters work (not on every machine)
                self.record(suite, name, alloc, run, "instr_per_iter", b["INSTRUCTIONS"])

    def micro_malloc(self, alloc, run):
        exe = self.bin / f"sp_bench_malloc{alloc['suffix']}"
        self.gbench("micro_malloc", exe, alloc["name"], alloc["preload"], run,
                    self.cfg["malloc_filter"], lambda n, a: (n.replace("/real_time", ""), a))

    def micro_pmr(self, run, preload=None, resource_re="[^/]+", label="pmr"):
        def split(name, _):
            parts = name.replace("/real_time", "").split("/")
            return "/".join([parts[0]] + parts[2:]), parts[1]

        self.gbench("micro_pmr", self.bin / "sp_bench_pmr", label, preload, run,
                    pmr_filter(self.cfg, resource_re), split)

    def arena_request(self, alloc, run):
        """Arena per request (issue 13), under each allocator: the std::pmr upstreams, new_delete
        and std move with it; slabpool's resources are the bench's own linked copy throughout.
        Rows <shape>/<variant>, column = the allocator of the process."""
        exe = self.bin / "sp_bench_arena_request"
        if not exe.exists():
            return

        def split(name, a):  # request/<shape>/<variant>/real_time
            return "/".join(name.replace("/real_time", "").split("/")[1:3]), a

        self.gbench("arena_request", exe, alloc["name"], alloc["preload"], run, "^request/",
                    split, self.cfg["arena_min_time"])

    def micro_pool(self, run):
        """Object pools (issue 7): new/delete under glibc, jemalloc and mimalloc (column = that
        allocator), the pools once in-process (columns object_pool and mutex_freelist)."""
        exe = self.bin / "sp_bench_pool"
        if not exe.exists():
            return

        def split(name, alloc):  # pool/<object>/<impl>/real_time/threads:N
            parts = name.replace("/real_time", "").split("/")
            return f"{parts[1]}/{parts[3]}", alloc if parts[2] == "new_delete" else parts[2]

        for a in self.allocs:
            if a["name"] in ("glibc", "jemalloc", "mimalloc"):
                self.gbench("micro_pool", exe, a["name"], a["preload"], run, "/new_delete/", split)
        self.gbench("micro_pool", exe, "pools", None, run, "/(object_pool|object_pool_typed|go_like|mutex_freelist)/", split)

    def go_sync_pool(self, run):
        """Go's own sync.Pool in the object_pool shapes (bench/go/syncpool_test.go), when `go` is
        installed: column go_sync_pool of the micro_pool suite, rows named like the C++ ones."""
        go = shutil.which("go")
        if go is None:
            return
        src = bc.ROOT / "bench" / "go"
        tmp = Path("/tmp") / "slabpool-bench-go"
        # Standard library only: no module download is needed, GOPROXY=off makes sure of it.
        cmd = ["env", f"GOCACHE={tmp}/cache", f"GOPATH={tmp}/path", "GOFLAGS=", "GOPROXY=off",
               go, "test", "-run", "^$", "-bench", "^BenchmarkSyncPool$", "-cpu", "2",
               "-benchtime", f"{self.cfg['min_time']}s"]
        r = bc.run(cmd, timeout=900, cwd=str(src))
        if r["rc"] != 0:
            return self.fail("go sync.Pool bench", "go_sync_pool", run, r)
        log = self.raw / "micro_pool" / f"go_sync_pool-run{run}.txt"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(r["out"])
        # BenchmarkSyncPool/<object>/threads:N-<GOMAXPROCS>  <iterations>  <x> ns/op ...
        for m in re.finditer(r"^BenchmarkSyncPool/(\S+?)-\d+\s+\d+\s+([0-9.]+) ns/op", r["out"],
                             re.M):
            name, ns = m.group(1), float(m.group(2))
            self.record("micro_pool", name, "go_sync_pool", run, "ns_op", ns)
            self.record("micro_pool", name, "go_sync_pool", run, "mops", 1e3 / ns)

    def resource_pool(self, run):
        """resource_pool vs the hand-written mutex+condvar+deque pool (issue 14), in-process:
        one RESULT line per implementation, thread count and max_open."""
        exe = self.bin / "sp_bench_resource_pool"
        if not exe.exists():
            return
        r = bc.run([str(exe), "--seconds", self.cfg["resource_pool_seconds"]], timeout=900)
        if r["rc"] != 0:
            return self.fail("resource_pool bench", "resource_pool", run, r)
        log = self.raw / "resource_pool" / f"run{run}.txt"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(r["out"])
        for row in bc.parse_result_lines(r["out"]):
            name = f"{int(row['threads'])} threads, max_open {int(row['max_open'])}"
            for metric in ("mops", "p50_ns", "p99_ns", "max_ns", "fairness"):
                self.record("resource_pool", name, row["impl"], run, metric, row[metric])

    def workload(self, name, alloc, run):
        exe = self.bin / f"sp_wl_{WORKLOAD_PROGRAM.get(name, name)}{alloc['suffix']}"
        args = list(self.cfg["workloads"][name])
        if name == "burst_idle":
            csv_path = self.raw / "timeline" / f"{alloc['name']}-run{run}.csv"
            csv_path.parent.mkdir(parents=True, exist_ok=True)
            args += ["--csv", str(csv_path)]
        r = bc.run([str(exe)] + args, preload=alloc["preload"], timeout=600)
        if r["rc"] != 0:
            return self.fail(f"workload {name}", alloc["name"], run, r)
        log = self.raw / "workloads" / f"{name}-{alloc['name']}-run{run}.txt"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(r["out"])
        for row in bc.parse_result_lines(r["out"]):
            key = name if "size" not in row else f"{name}/{int(row['size'])}"
            for metric, value in row.items():
                if isinstance(value, float) and metric not in ("size",):
                    self.record("workload", key, alloc["name"], run, metric, value)
            if name == "burst_idle" and row.get("total_mib"):  # everything is live at the peak
                self.record("workload", key, alloc["name"], run, "overhead",
                            row["peak_mib"] / row["total_mib"])
        self.record("workload", name, alloc["name"], run, "peak_rss_mib", r["maxrss_kib"] / 1024)
        self.record("workload", name, alloc["name"], run, "wall_s", r["wall_s"])

    def real_program(self, name, alloc, run):
        """One real program (python3, g++, ...) under one allocator: wall time and peak RSS."""
        try:
            r = real_programs.run_one(name, self.raw / "real_work", alloc["preload"])
        except (RuntimeError, OSError) as e:
            return self.fail(f"real program {name}", alloc["name"], run,
                             {"rc": getattr(e, "errno", None) or 1, "err": str(e)})
        self.record("real", name, alloc["name"], run, "wall_s", r.wall)
        self.record("real", name, alloc["name"], run, "peak_rss_mib", r.rss_kib / 1024)

    def run_all(self, runs, inscount_runs):
        w = self.wanted
        names = [n for n in self.cfg["workloads"] if w(f"workload:{n}")]
        jemalloc = next((a for a in self.allocs if a["name"] == "jemalloc"), None)
        go = shutil.which("go") is not None and w("go_sync_pool")
        if shutil.which("go") is None:
            self.notes.append("go not found: no Go sync.Pool column (apt-get install golang-go)")
        programs, real_notes = real_programs.available(
            [p for p in self.cfg["real_programs"] if w(f"real:{p}")])
        self.notes += real_notes
        real_runs = min(runs, self.cfg["real_runs"])
        n_allocs = len(self.allocs)
        per_run = (n_allocs * w("micro_malloc") + w("micro_pmr") * (1 + bool(jemalloc)) +
                   w("micro_pool") + go + w("resource_pool") + n_allocs * w("arena_request") +
                   len(names) * n_allocs)
        _, ins_jobs = inscount.jobs(self.build, self.extra)
        ins = w("inscount")
        progress = bc.Progress(runs * per_run + real_runs * len(programs) * n_allocs +
                               ins * inscount_runs * len(ins_jobs))
        t0 = time.monotonic()
        for run in range(1, runs + 1):
            for a in self.allocs if w("micro_malloc") else []:
                progress.step(f"micro malloc under {a['name']} (run {run}/{runs})")
                self.micro_malloc(a, run)
            if w("micro_pmr"):
                progress.step(f"micro pmr resources in-process (run {run}/{runs})")
                self.micro_pmr(run)
            if w("micro_pmr") and jemalloc:
                progress.step(f"micro pmr jemalloc resource under LD_PRELOAD (run {run}/{runs})")
                self.micro_pmr(run, jemalloc["preload"], "jemalloc", "pmr-jemalloc")
            if w("micro_pool"):
                progress.step(f"micro object pools (run {run}/{runs})")
                self.micro_pool(run)
            if go:  # right after object_pool, so both see the same load
                progress.step(f"Go sync.Pool, same shapes (run {run}/{runs})")
                self.go_sync_pool(run)
            if w("resource_pool"):
                progress.step(f"resource pools vs mutex+condvar+deque (run {run}/{runs})")
                self.resource_pool(run)
            for a in self.allocs if w("arena_request") else []:
                progress.step(f"arena per request under {a['name']} (run {run}/{runs})")
                self.arena_request(a, run)
            for name in names:
                for a in self.allocs:
                    progress.step(f"workload {name} under {a['name']} (run {run}/{runs})")
                    self.workload(name, a, run)
            for name in programs if run <= real_runs else []:
                # Interleaved, and the order rotates by run so no allocator always goes first.
                k = (run - 1) % n_allocs
                for a in self.allocs[k:] + self.allocs[:k]:
                    progress.step(f"real program {name} under {a['name']} (run {run}/{real_runs})")
                    self.real_program(name, a, run)
        method, ins_rows = "not run (--only)", []
        if ins:
            method, ins_rows = inscount.measure(self.build, self.mode == "quick", inscount_runs,
                                                progress, self.extra)
        bc.write_json(self.raw / "inscount.json", {"method": method, "rows": ins_rows})
        shutil.rmtree(self.raw / "real_work", ignore_errors=True)
        return {"inscount_method": method, "duration_s": time.monotonic() - t0,
                "real_runs": real_runs if programs else 0,
                "real_paths": {n: real_programs.command_path(n) for n in programs}}

    def save(self, extra):
        bc.write_json(self.raw / "results.json", self.records)
        with open(self.raw / "results.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["suite", "name", "alloc", "run", "metric", "value"])
            w.writeheader()
            w.writerows(self.records)
        meta = dict(self.meta)
        meta.update(extra)
        meta.update({"mode": self.mode, "allocators": self.allocs, "notes": self.notes,
                     "failures": self.failures, "config": self.cfg,
                     "only": self.only.pattern if self.only else None})
        bc.write_json(self.raw / "meta.json", meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, help="override the number of interleaved runs")
    ap.add_argument("--with", dest="extra", action="append", default=[], metavar="NAME=LIB",
                    help="also measure the allocator in LIB under LD_PRELOAD, column NAME")
    ap.add_argument("--only", help="run only the steps whose name this regex finds (see "
                                   "Runner.wanted)")
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    try:
        extra = bc.preload_specs(args.extra)
    except ValueError as e:
        sys.exit(f"scripts/bench: {e}")
    runner = Runner(args.build_dir, args.out, mode, extra, args.only)
    runs = args.runs or MODES[mode]["runs"]
    extra = runner.run_all(runs, MODES[mode]["inscount_runs"])
    extra["runs"] = runs
    runner.save(extra)
    if runner.failures:
        print(f"{len(runner.failures)} step(s) failed; see REPORT.md", file=sys.stderr)


if __name__ == "__main__":
    main()
