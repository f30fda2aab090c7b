"""The Python side of scripts/bench and scripts/inscount (standard library, plus matplotlib for
the plots). The shell scripts put bench/tools on PYTHONPATH and run the modules with
`python3 -m slabpool_bench.<module>`:

- common:   allocator discovery (and the --with checks), running a child with its peak RSS,
            machine facts, statistics
- inscount: instructions per malloc+free pair (scripts/inscount; also a step of run)
- real_programs: python3, g++, perl, sort, sqlite3, redis under an allocator (tests/preload's
            driver and inputs), wall time and peak RSS
- run:      every benchmark with the allocators interleaved; writes <report>/raw/ (not in git)
- report:   REPORT.md, the PNG plots and summary.json from raw/; the README summary from
            summary.json (--update-readme)
- plots:    the PNG charts (matplotlib, Agg backend)
"""
