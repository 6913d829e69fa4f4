#!/usr/bin/env python3
"""Enqueue->start latency, interleaved: round 1 of every library, then round 2 ..., each with a
fresh worker tree (2 processes x 10 slots) that drained a warm-up batch and then sat idle.

    python bench/latency_interleaved.py taskqueue,huey [--rate 200] [--seconds 10] [--runs 3]
        [--base-tree /path/to/an/older/checkout]   # adds taskqueue-base: that tree's workers

Each job's argument is the wall-clock time just before its enqueue; the task records start -
enqueue (bench/apps/benchtask.py). Prints p50/p95/p99 (ms) per run with the load, and the
load-independent cost of the phase per job: new Redis connections, Redis commands and Redis CPU
µs (producer, workers and the task's own INCR and sample, all included); then the median and
min-max of each over the runs. The producer is this process (the current tree's
client, also for taskqueue-base, whose workers run the older tree).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH / "apps")]
WARMUP = 500


def _counts(r) -> dict[str, float]:  # noqa: ANN001 - a redis.Redis
    """Connections accepted, commands run and CPU µs used by the server so far."""
    cpu = r.info("cpu")
    return {
        "connections": r.info("stats")["total_connections_received"],
        "commands": sum(int(v["calls"]) for v in r.info("commandstats").values()),
        "redis_us": (cpu["used_cpu_user"] + cpu["used_cpu_sys"]) * 1e6,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("libraries")
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--base-tree", help="a checkout whose taskqueue workers run as taskqueue-base")
    p.add_argument("--by-command", action="store_true", help="print Redis calls per job by command")
    args = p.parse_args()
    from harness import command_delta, commandstats, interleaved_setup, print_medians

    names = args.libraries.split(",")
    server, bench, adapters = interleaved_setup(names, args.base_tree, BENCH / "results" / "logs")
    res: dict[str, list[dict]] = {n: [] for n in names}
    n_jobs = max(int(args.rate * args.seconds), 50)
    try:
        for _ in range(args.runs):
            for n, a in adapters.items():
                bench.flush()
                tree = bench.start(a, 2, 10)
                try:
                    a.enqueue_seq(list(range(WARMUP)))
                    bench.wait_count(tree, WARMUP, 120)
                    time.sleep(1.0)  # idle: every worker back in its blocking wait
                    before, stats = _counts(bench.r), commandstats(bench.r)
                    d = bench.latency(a, tree, args.rate, n_jobs)
                    after, by_command = (
                        _counts(bench.r),
                        command_delta(stats, commandstats(bench.r)),
                    )
                finally:
                    tree.stop()
                d |= {k: (after[k] - before[k]) / n_jobs for k in after}
                res[n].append(d)
                print(f"{n:16s} p50 {d['p50_ms']:.3f} ms  p95 {d['p95_ms']:.3f}  p99 "
                      f"{d['p99_ms']:.3f}  per job: connections {d['connections']:.2f}, "
                      f"commands {d['commands']:.1f}, Redis CPU {d['redis_us']:.0f} µs  "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
                if args.by_command:
                    print("    " + "  ".join(f"{k.removeprefix('cmdstat_')} {v / n_jobs:.2f}"
                                             for k, v in by_command["by_command"].items()))  # fmt: skip
    finally:
        for a in adapters.values():
            a.close()
        server.close()
    print_medians(res, ("p50_ms", "p95_ms", "p99_ms", "connections", "commands", "redis_us"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
