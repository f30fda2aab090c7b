"""Real programs under each allocator (issue 12): python3, g++, perl, sort, sqlite3 and redis, the
same runs the preload tests check for correctness. The programs, their inputs and the driver are
tests/preload's (real_programs.py and workloads/): this module loads that driver and measures what
one execution under one LD_PRELOAD costs: wall time and peak RSS (GNU time's %M, the largest
process of the program's tree, e.g. cc1plus under g++; redis: redis-server)."""

import importlib.util
import shutil
from pathlib import Path

from . import common as bc

DRIVER = bc.ROOT / "tests" / "preload" / "real_programs.py"
# name: (commands it needs, Debian packages that provide them, what one execution is)
PROGRAMS = {
    "python3": (["python3"], ["python3"], "python3 running tests/preload/workloads/churn.py"),
    "gxx": (["g++"], ["g++"], "g++ -std=c++20 -O1 -S tests/preload/workloads/templates.cpp"),
    "perl": (["perl"], ["perl"], "perl running tests/preload/workloads/churn.pl"),
    "sort": (["sort"], ["coreutils"], "sort --parallel=2 of 500 000 generated lines by two keys"),
    "sqlite3": (["sqlite3"], ["sqlite3"], "sqlite3 running tests/preload/workloads/queries.sql on "
                "a fresh database file"),
    "redis": (["redis-server", "redis-cli", "redis-benchmark"], ["redis-server", "redis-tools"],
              "redis-server under the allocator; clients on glibc: the command script, then "
              "redis-benchmark -n 20000 -c 20 -d 200 (time: client side; RSS: redis-server)"),
}
LABELS = {"gxx": "g++"}
_driver = None


def driver():
    """tests/preload/real_programs.py as a module (None when the tree has no such file)."""
    global _driver
    if _driver is None and DRIVER.exists():
        spec = importlib.util.spec_from_file_location("slabpool_real_programs", DRIVER)
        _driver = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_driver)
    return _driver


def available(names):
    """The programs of `names` that can run here, and a note for each one that cannot."""
    if not names:
        return [], []
    if driver() is None:
        return [], [f"real programs skipped: {DRIVER.relative_to(bc.ROOT)} not found"]
    ok, notes = [], []
    for name in names:
        missing = [c for c in PROGRAMS[name][0] if shutil.which(c) is None]
        if missing or name not in driver().WORKLOAD_TABLE:
            notes.append(f"real program {LABELS.get(name, name)} skipped: "
                         f"{' '.join(missing) or 'no such workload'} not installed "
                         f"(apt-get install {' '.join(PROGRAMS[name][1])})")
        else:
            ok.append(name)
    if not Path(driver().TIME).exists():
        notes.append(f"{driver().TIME} missing (Debian package time): real programs' peak RSS "
                     "is wait4's, which counts the parent's high-water mark")
    return ok, notes


def command_path(name):
    """Where the program's first command was found (e.g. a pyenv shim in front of python3)."""
    return shutil.which(PROGRAMS[name][0][0])


def run_one(name, workdir, preload):
    """One execution of program `name` under `preload` (None = glibc): an object with .wall
    (seconds) and .rss_kib. Raises RuntimeError when the program fails or times out."""
    Path(workdir).mkdir(parents=True, exist_ok=True)
    return driver().WORKLOAD_TABLE[name][1](str(workdir), preload)
