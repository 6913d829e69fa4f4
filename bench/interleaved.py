#!/usr/bin/env python3
"""Interleaved drains: run 1 of every library, then run 2 ..., so that a change in what else
loads the machine lands on every library alike; compare the ratios of adjacent runs.

    python bench/interleaved.py taskqueue,huey,taskqueue-async [--jobs 20000] [--runs 3]
        [--base-tree /path/to/an/older/checkout]   # adds taskqueue-base: that tree's code

Runs in the current interpreter (the peers named must be installed). Prints steady jobs/s,
Redis commands per job and CPU s per 1,000 jobs (workers + Redis) per run, with the load.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH / "apps")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("libraries")
    p.add_argument("--jobs", type=int, default=20000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--base-tree", help="a checkout whose taskqueue runs as taskqueue-base")
    p.add_argument("--by-command", action="store_true", help="print Redis calls per job by command")
    args = p.parse_args()
    from harness import interleaved_setup, print_medians

    names = args.libraries.split(",")
    server, bench, adapters = interleaved_setup(names, args.base_tree, BENCH / "results" / "logs")
    res: dict[str, list[dict]] = {n: [] for n in names}
    try:
        for _ in range(args.runs):
            for n, a in adapters.items():
                bench.flush()
                xs = list(range(args.jobs))
                a.enqueue_bulk(xs) if a.bulk_api else a.prefill(xs)
                tree = bench.start(a, 2, 10)
                try:
                    d = bench.drain(a, tree, args.jobs, 300)
                finally:
                    tree.stop()
                res[n].append(d)
                print(f"{n:16s} steady {d['steady_rate']:7.0f}/s  cmds/job "
                      f"{d['cmds_per_job']:5.2f}  cpu s/1k {d['cpu_per_1000']:.3f} (workers "
                      f"{d['worker_cpu_per_1000']:.3f}, redis {d['redis_cpu_per_1000']:.3f})  "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
                if args.by_command:
                    top = sorted(d["cmds_by_command"].items(), key=lambda kv: -kv[1])
                    print(
                        "    " + "  ".join(f"{k.removeprefix('cmdstat_')} {v:.2f}" for k, v in top)
                    )
    finally:
        for a in adapters.values():
            a.close()
        server.close()
    print_medians(res, ("steady_rate", "cmds_per_job", "cpu_per_1000", "redis_cpu_per_1000"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
