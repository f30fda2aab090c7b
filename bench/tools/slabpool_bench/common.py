"""Shared helpers for scripts/bench and scripts/inscount: allocator discovery, running a child
with its peak RSS (wait4), machine/version facts and small statistics. Standard library only."""

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # bench/tools/slabpool_bench/common.py
PRELOAD_SHIM = Path("adapters/preload/libslabpool-preload.so")  # relative to a build dir
LIB_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"]
# Reference allocators reached with LD_PRELOAD; glibc is the process without a preload.
PRELOAD_LIBS = [("jemalloc", "libjemalloc.so.2"), ("mimalloc", "libmimalloc.so.2"),
                ("tcmalloc", "libtcmalloc_minimal.so.4")]
# Debian packages whose versions the report header names.
VERSION_PACKAGES = ["libc6", "libstdc++6", "libjemalloc2", "libmimalloc2.0",
                    "libtcmalloc-minimal4", "libbenchmark1debian", "valgrind", "g++-12",
                    "clang-14"]


def find_lib(name):
    for d in LIB_DIRS:
        p = Path(d) / name
        if p.exists():
            return str(p)
    return None


def allocators(build_dir, extra=()):
    """The allocators to compare, in report order, and notes on any that are missing.

    Each entry: name, preload (a path or None) and suffix ("" or "_linked": which binaries to run);
    entries from `extra` ((name, path) pairs, scripts/bench --with) also carry "with": True.
    slabpool is measured through the preload shim when the build has it; otherwise through the
    *_linked binaries that call sp_malloc directly, and the notes say the preload runs were skipped.
    """
    build_dir = Path(build_dir)
    bin_dir = build_dir / "bench" / "bin"
    result = [{"name": "glibc", "preload": None, "suffix": ""}]
    notes = []
    for name, lib in PRELOAD_LIBS:
        path = find_lib(lib)
        if path:
            result.append({"name": name, "preload": path, "suffix": ""})
        else:
            notes.append(f"{name}: {lib} not found, skipped")
    for name, path in extra:  # after the Debian ones, before slabpool (last, as in every table)
        result.append({"name": name, "preload": str(Path(path).resolve()), "suffix": "",
                       "with": True})
    shim = build_dir / PRELOAD_SHIM
    if shim.exists():
        result.append({"name": "slabpool", "preload": str(shim), "suffix": ""})
    else:
        notes.append(f"slabpool preload runs skipped: {PRELOAD_SHIM} does not exist in this build.")
        if (bin_dir / "sp_bench_malloc_linked").exists():
            result.append({"name": "slabpool-linked", "preload": None, "suffix": "_linked"})
            notes.append("slabpool is measured through binaries linked to libslabpool that call "
                         "sp_malloc/sp_free (and operator new) directly: 'slabpool-linked'.")
        else:
            notes.append("slabpool was not built (library missing or not building): no slabpool "
                         "figures in this report.")
    return result, notes


# Names an allocator added with --with may not take: the built-in columns.
RESERVED_NAMES = {"glibc", "slabpool", "slabpool-linked", "pmr", "pools"} | {
    name for name, _ in PRELOAD_LIBS}


def preload_spec(spec, taken=()):
    """Parses and checks one `--with NAME=/path/to/lib.so`; returns (name, absolute path).

    Raises ValueError with the reason when NAME is empty, not a plain word or already a column,
    or when the file is missing, not an ELF shared library, exports no malloc, or the dynamic
    loader refuses to preload it."""
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"--with {spec!r}: expected NAME=/path/to/lib.so")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", name):
        raise ValueError(f"--with {spec!r}: NAME must be letters, digits, '_', '.', '+' or '-'")
    if name in RESERVED_NAMES or name in taken:
        raise ValueError(f"--with {spec!r}: '{name}' is already a column of the report; "
                         "pick another name (e.g. mimalloc3 for a mimalloc built from source)")
    p = Path(path)
    if not p.exists():
        raise ValueError(f"--with {spec!r}: {path} does not exist")
    if not p.is_file():
        raise ValueError(f"--with {spec!r}: {path} is not a file")
    with open(p, "rb") as f:
        head = f.read(18)
    # ELF magic, then e_type (little-endian on the machines this runs on) == ET_DYN.
    if head[:4] != b"\x7fELF" or int.from_bytes(head[16:18], "little") != 3:
        raise ValueError(f"--with {spec!r}: {path} is not a shared library (ELF ET_DYN)")
    if have("nm"):
        syms = subprocess.run(["nm", "-D", "--defined-only", str(p)], capture_output=True,
                              text=True, check=False).stdout.split()
        if "malloc" not in syms:
            raise ValueError(f"--with {spec!r}: {path} does not export malloc, so LD_PRELOAD "
                             "would not put it in front of glibc")
    r = subprocess.run(["true"], env=child_env(str(p.resolve())), capture_output=True, text=True,
                       check=False)
    if "cannot be preloaded" in r.stderr or r.returncode != 0:
        raise ValueError(f"--with {spec!r}: the dynamic loader refuses it: {r.stderr.strip()}")
    return name, str(p.resolve())


def preload_specs(specs):
    """Every --with of a command line, checked (see preload_spec); names must differ."""
    out = []
    for spec in specs:
        out.append(preload_spec(spec, {n for n, _ in out}))
    return out


def child_env(preload):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    return env


def run(cmd, preload=None, timeout=600, cwd=None):
    """Runs cmd; returns rc, stdout, stderr, wall seconds and peak RSS in KiB (from wait4)."""
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"sp_bench_{os.getpid()}.out"
    err_path = out_path.with_suffix(".err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=child_env(preload), cwd=cwd)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        timer.cancel()
        wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = out_path.read_text(), err_path.read_text()
    out_path.unlink()
    err_path.unlink()
    return {"rc": proc.returncode, "out": stdout, "err": stderr, "wall_s": wall,
            "maxrss_kib": usage.ru_maxrss}


def parse_result_lines(text, prefix="RESULT"):
    """Parses 'RESULT key=value ...' lines into dicts (numbers converted)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith(prefix + " "):
            continue
        row = {}
        for token in line.split()[1:]:
            key, _, value = token.partition("=")
            try:
                row[key] = float(value)
            except ValueError:
                row[key] = value
        rows.append(row)
    return rows


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def machine_info(build_dir):
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem_gib = kib / 1024 / 1024
    except (OSError, AttributeError):
        pass
    compiler = "unknown"
    cache = Path(build_dir) / "CMakeCache.txt"
    if cache.exists():
        m = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.*)$", cache.read_text(), re.M)
        if m:
            compiler = sh([m.group(1), "--version"]).splitlines()[0]
    versions = {}
    for pkg in VERSION_PACKAGES:
        v = sh(["dpkg-query", "-W", "-f=${Version}", pkg])
        if v:
            versions[pkg] = v
    commit = sh(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]) or "nocommit"
    dirty = bool(sh(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"]))
    try:
        load = float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        load = None
    return {"loadavg_1min": load, "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "mem_gib": round(mem_gib, 1), "compiler": compiler, "versions": versions,
            "commit": commit, "dirty": dirty, "date": time.strftime("%Y-%m-%d"),
            "time": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def summarize(values):
    """Median, min, max and spread ((max-min)/median) of a list of numbers."""
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    med = statistics.median(vals)
    spread = (vals[-1] - vals[0]) / med if med else 0.0
    return {"median": med, "min": vals[0], "max": vals[-1], "n": len(vals), "spread": spread}


class Progress:
    """Prints '[i/n] message' lines to stderr as steps start."""

    def __init__(self, total):
        self.total, self.i, self.t0 = total, 0, time.monotonic()

    def step(self, message):
        self.i += 1
        elapsed = time.monotonic() - self.t0
        print(f"[{self.i}/{self.total}] {message}  ({elapsed:.0f}s)", file=sys.stderr, flush=True)


def write_json(path, data):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=True))


def have(tool):
    return shutil.which(tool) is not None


def main():
    """`python3 -m slabpool_bench.common --check-with SPEC...`: scripts/bench checks its --with
    options before building; prints one error line per bad SPEC and exits 2."""
    args = sys.argv[1:]
    if not args or args[0] != "--check-with":
        sys.exit("usage: python3 -m slabpool_bench.common --check-with NAME=LIB ...")
    try:
        for name, path in preload_specs(args[1:]):
            print(f"--with {name}: {path}", file=sys.stderr)
    except ValueError as e:
        print(f"scripts/bench: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
