#!/usr/bin/env python3
"""Real programs from Debian's packages under an LD_PRELOAD allocator.

  real_programs.py check NAME --preload LIB --workdir DIR
      Runs workload NAME on glibc and under LIB; fails when the outputs differ, a run fails, or
      slabpool writes anything to stderr (SLABPOOL_VERBOSE=1 reports even ignored frees).
      Exits 77 (ctest: skipped) when the program is not installed.
  real_programs.py bench --workdir DIR [--runs N] [--names A,B] ALLOCATOR=LIB ...
      Interleaved runs of every workload under each allocator ("glibc" for none); prints a
      Markdown table of median wall time and median peak RSS.
"""
import argparse
import hashlib
import os
import random
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = os.path.join(HERE, "workloads")
TIMEOUT = 120
SKIP = 77


class Run:
    def __init__(self, output, wall, rss_kib, stderr):
        self.output, self.wall, self.rss_kib, self.stderr = output, wall, rss_kib, stderr


def environment(preload):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env["LC_ALL"] = "C"
    if preload:
        env["LD_PRELOAD"] = preload
    return env


TIME = "/usr/bin/time"


def wrapped(argv, preload, rss_path):
    """The command and environment that run argv under `preload` and report its peak RSS.

    A child's ru_maxrss starts from its parent's high-water mark (Linux carries it across fork and
    exec), so measured directly from this Python process every small program would "use" as much
    as Python. GNU time is a small parent: it runs env, which sets LD_PRELOAD for the program only,
    and writes the peak RSS of the program's process tree (its largest process) to rss_path."""
    if not os.path.exists(TIME):
        return argv, environment(preload)
    command = [TIME, "-f", "%M", "-o", rss_path, "env"]
    if preload:
        command.append("LD_PRELOAD=" + preload)
    return command + argv, environment(None)


def read_rss(rss_path, usage):
    try:
        with open(rss_path) as f:
            return int(f.read().split()[-1])
    except (OSError, ValueError, IndexError):
        return usage.ru_maxrss
    finally:
        if os.path.exists(rss_path):
            os.unlink(rss_path)


def measured(argv, preload, stdin_path=None, cwd=None):
    """Runs argv to completion; returns its output, wall time and peak RSS (of the largest process
    of its tree, e.g. cc1plus under g++)."""
    stdin = open(stdin_path, "rb") if stdin_path else None
    rss_path = os.path.join(tempfile.gettempdir(), "real_programs-rss-%d" % os.getpid())
    command, env = wrapped(argv, preload, rss_path)
    try:
        start = time.monotonic()
        proc = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, cwd=cwd)
        out_chunks, err_chunks = [], []
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ, out_chunks)
        sel.register(proc.stderr, selectors.EVENT_READ, err_chunks)
        deadline = start + TIMEOUT
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                proc.kill()
                raise RuntimeError("%s timed out after %d s" % (argv[0], TIMEOUT))
            for key, _ in sel.select(timeout=remaining):
                chunk = os.read(key.fileobj.fileno(), 1 << 16)
                if chunk:
                    key.data.append(chunk)
                else:
                    sel.unregister(key.fileobj)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - start
    finally:
        if stdin:
            stdin.close()
    out, err = b"".join(out_chunks), b"".join(err_chunks)
    rss = read_rss(rss_path, usage)
    if proc.returncode != 0:
        raise RuntimeError("%s exited with %d: %s" % (argv[0], proc.returncode, err.decode()[-2000:]))
    return Run(out, wall, rss, err)


# --- workloads: each returns a Run for one execution under `preload` (None = glibc) ------------
def workload_python3(workdir, preload):
    return measured(["python3", os.path.join(WORKLOADS, "churn.py")], preload)


def workload_perl(workdir, preload):
    return measured(["perl", os.path.join(WORKLOADS, "churn.pl")], preload)


def workload_gxx(workdir, preload):
    out_path = os.path.join(workdir, "templates-%d.s" % os.getpid())
    r = measured(["g++", "-std=c++20", "-O1", "-S", "-o", out_path,
                  os.path.join(WORKLOADS, "templates.cpp")], preload)
    with open(out_path, "rb") as f:
        r.output += f.read()
    os.unlink(out_path)
    return r


def sort_input(workdir):
    path = os.path.join(workdir, "sort-input.txt")
    if not os.path.exists(path):
        rng = random.Random(7)
        letters = "abcdefghijklmnopqrstuvwxyz"
        with open(path + ".tmp", "w") as f:
            for i in range(500000):
                word = "".join(rng.choice(letters) for _ in range(rng.randrange(3, 14)))
                f.write("%s,%d,%s\n" % (word, rng.randrange(1000000), "x" * (i % 17)))
        os.replace(path + ".tmp", path)
    return path


def workload_sort(workdir, preload):
    path = sort_input(workdir)
    r = measured(["sort", "--parallel=2", "-t,", "-k2,2n", "-k1,1", path], preload)
    # the sorted file is large: compare digests
    r.output = hashlib.sha256(r.output).hexdigest().encode()
    return r


def workload_sqlite3(workdir, preload):
    db = os.path.join(workdir, "bench-%d.db" % os.getpid())
    if os.path.exists(db):
        os.unlink(db)
    try:
        return measured(["sqlite3", db], preload, stdin_path=os.path.join(WORKLOADS, "queries.sql"))
    finally:
        if os.path.exists(db):
            os.unlink(db)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_cli(port, *args, stdin_path=None):
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port)] + list(args),
                              stdin=stdin, capture_output=True, timeout=TIMEOUT, env=environment(None))
    finally:
        if stdin_path:
            stdin.close()


def workload_redis(workdir, preload):
    """redis-server under `preload`; the clients run on glibc. Wall time is the client side."""
    port = free_port()
    rss_path = os.path.join(workdir, "redis-rss-%d" % os.getpid())
    command, env = wrapped(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                            "--appendonly", "no", "--dir", workdir, "--daemonize", "no",
                            "--logfile", ""], preload, rss_path)
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        for _ in range(200):
            if redis_cli(port, "PING").stdout.strip() == b"PONG":
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("redis-server did not answer on port %d" % port)
        start = time.monotonic()
        transcript = redis_cli(port, stdin_path=os.path.join(WORKLOADS, "redis_commands.txt")).stdout
        bench = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", "20000",
                                "-c", "20", "-r", "10000", "-d", "200", "-q",
                                "-t", "set,get,incr,lpush,rpop,sadd,hset,zadd,mset"],
                               capture_output=True, timeout=TIMEOUT, env=environment(None))
        wall = time.monotonic() - start
        if bench.returncode != 0:
            raise RuntimeError("redis-benchmark failed: %s" % bench.stderr.decode()[-2000:])
        transcript += redis_cli(port, "GET", "greeting").stdout
        transcript += redis_cli(port, "HGETALL", "user").stdout
        redis_cli(port, "SHUTDOWN", "NOSAVE")
        _, status, usage = os.wait4(server.pid, 0)
        server.returncode = os.waitstatus_to_exitcode(status)
        err = server.stderr.read()
        if server.returncode != 0:
            raise RuntimeError("redis-server exited with %d: %s" % (server.returncode, err.decode()[-2000:]))
        return Run(transcript, wall, read_rss(rss_path, usage), err)
    finally:
        if server.poll() is None and server.returncode is None:
            server.kill()
            server.wait()


WORKLOAD_TABLE = {
    "python3": (["python3"], workload_python3),
    "gxx": (["g++"], workload_gxx),
    "perl": (["perl"], workload_perl),
    "sort": (["sort"], workload_sort),
    "sqlite3": (["sqlite3"], workload_sqlite3),
    "redis": (["redis-server", "redis-cli", "redis-benchmark"], workload_redis),
}


def missing_programs(name):
    return [p for p in WORKLOAD_TABLE[name][0] if shutil.which(p) is None]


def check(args):
    missing = missing_programs(args.name)
    if missing:
        print("skipped: not installed: %s" % " ".join(missing))
        return SKIP
    os.makedirs(args.workdir, exist_ok=True)
    os.environ["SLABPOOL_VERBOSE"] = "1"
    fn = WORKLOAD_TABLE[args.name][1]
    reference = fn(args.workdir, None)
    shimmed = fn(args.workdir, args.preload)
    failures = 0
    if reference.output != shimmed.output:
        failures += 1
        print("FAIL: output differs (%d bytes on glibc, %d under the shim)"
              % (len(reference.output), len(shimmed.output)))
    if b"slabpool" in shimmed.stderr:
        failures += 1
        print("FAIL: slabpool reported on stderr:\n%s" % shimmed.stderr.decode(errors="replace")[-2000:])
    print("%s: glibc %.2f s %d KiB, shim %.2f s %d KiB" % (args.name, reference.wall, reference.rss_kib,
                                                        shimmed.wall, shimmed.rss_kib))
    print("%d passed, %d failed" % (1 - min(failures, 1), min(failures, 1)))
    return 1 if failures else 0


def bench(args):
    allocators = [("glibc", None)]
    for spec in args.allocators:
        name, _, path = spec.partition("=")
        if not os.path.exists(path):
            sys.exit("no such library: %s" % path)
        allocators.append((name, path))
    names = args.names.split(",") if args.names else list(WORKLOAD_TABLE)
    names = [n for n in names if not missing_programs(n)]
    os.makedirs(args.workdir, exist_ok=True)
    sort_input(args.workdir)
    results = {(n, a): [] for n in names for a, _ in allocators}
    for i in range(args.runs):
        for n in names:  # interleaved: each round runs every allocator once, in rotating order
            order = allocators[i % len(allocators):] + allocators[:i % len(allocators)]
            for a, path in order:
                results[(n, a)].append(WORKLOAD_TABLE[n][1](args.workdir, path))
        print("round %d/%d done" % (i + 1, args.runs), file=sys.stderr)
    header = "| program | " + " | ".join("%s time (s) | %s RSS (MiB)" % (a, a) for a, _ in allocators) + " |"
    print(header)
    print("|---" * (1 + 2 * len(allocators)) + "|")
    for n in names:
        cells = []
        for a, _ in allocators:
            runs = results[(n, a)]
            cells.append("%.3f" % statistics.median(r.wall for r in runs))
            cells.append("%.1f" % (statistics.median(r.rss_kib for r in runs) / 1024))
        print("| %s | %s |" % (n, " | ".join(cells)))
    print("\nmedians of %d interleaved runs; redis: client wall time for the command script and "
          "redis-benchmark -n 20000, peak RSS of redis-server" % args.runs)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("name", choices=sorted(WORKLOAD_TABLE))
    c.add_argument("--preload", required=True)
    c.add_argument("--workdir", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--workdir", required=True)
    b.add_argument("--runs", type=int, default=5)
    b.add_argument("--names", default="")
    b.add_argument("allocators", nargs="*", metavar="NAME=LIB")
    args = parser.parse_args()
    return check(args) if args.command == "check" else bench(args)


if __name__ == "__main__":
    sys.exit(main())
