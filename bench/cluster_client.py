#!/usr/bin/env python3
"""The asyncio cluster client, before and after it kept to ``[redis] pool_size``; and the cost
of an acknowledged enqueue (``min_replicas_acked = 1``) from the asyncio client on a cluster.

    .venv/bin/python bench/cluster_client.py [--jobs 5000] [--enqueues 2000] [--runs 5]

On one 3-primary cluster (a replica each), interleaved, each run in a fresh process:
- ``drain-before``: a burst asyncio Worker (50 slots) drains ``--jobs`` no-op jobs with the
  admission bound switched off and 100 connections per node, as the client was before;
- ``drain-after``: the same with the default ``pool_size`` (10): at most 10 per node, callers wait;
- ``enqueue`` / ``enqueue-acked``: ``--enqueues`` single AsyncTaskQueue enqueues, without and
  with ``min_replicas_acked = 1``.
Prints per run, then the median and min-max: jobs (or enqueues) per second, the worker's own CPU
us per job (barely moves with the machine's load), Redis commands per job (summed over the
primaries' commandstats) and the most connections the process held on one node.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VARIANTS = ("drain-before", "drain-after", "enqueue", "enqueue-acked")


def child(variant: str, url: str, n: int) -> None:
    """One timed run in this process; prints one JSON line."""
    from taskqueue import AsyncTaskQueue, TaskQueue, cluster_bound, connection, task
    from taskqueue.registry import Registry
    from taskqueue.worker import Worker

    reg = Registry()

    @task(name="bench.noop", registry=reg)
    async def noop(i: int = 0) -> int:
        return i

    if variant == "drain-before":

        @contextlib.asynccontextmanager
        async def free(client: object):  # noqa: ANN202 - the bound switched off
            yield

        cluster_bound.admitted = free
    pool = 100 if variant == "drain-before" else 10
    settings = connection.RedisSettings(
        url, pool_size=pool, min_replicas_acked=int(variant == "enqueue-acked")
    )
    if variant.startswith("drain"):
        tq = TaskQueue(settings, namespace="bench", registry=reg)
        tq.enqueue_many([(noop, (i,), {}) for i in range(n)])
        worker = Worker(tq, registry=reg, max_concurrent_tasks=50, queues=["default"])
        print("ready", flush=True)
        sys.stdin.readline()  # the parent has sampled the counters
        t, own = time.perf_counter(), time.process_time()
        worker.run(burst=True)
    else:

        async def enqueues() -> None:
            atq = AsyncTaskQueue(settings, namespace="bench", registry=reg)
            for i in range(200):  # warm-up: connections, slot map, scripts
                await atq.enqueue(noop, i)
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            nonlocal t, own
            t, own = time.perf_counter(), time.process_time()
            for i in range(n):
                await atq.enqueue(noop, i)
            await atq.close()

        t = own = 0.0
        asyncio.run(enqueues())
    dt, own = time.perf_counter() - t, time.process_time() - own
    print(json.dumps({"rate": n / dt, "client_us_per_job": own / n * 1e6}), flush=True)


def commands(primaries: list) -> int:  # noqa: ANN001 - RedisServer list
    total = 0
    for p in primaries:
        with p.client() as c:
            total += sum(int(v["calls"]) for v in c.info("commandstats").values())
    return total


def run(cluster, variant: str, n: int) -> dict:  # noqa: ANN001 - a LocalCluster
    cluster.flush()
    primaries = [p for p in cluster.nodes if p.client().info("replication")["role"] == "master"]
    proc = subprocess.Popen([sys.executable, __file__, "--child", variant, cluster.url, str(n)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "ready"
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            for p in primaries:
                with p.client() as c:
                    mine = [
                        x for x in c.client_list() if x.get("name", "").endswith(f":{proc.pid}")
                    ]
                peak[0] = max(peak[0], len(mine))

    sampler = threading.Thread(target=sample, daemon=True)
    before = commands(primaries)
    sampler.start()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    out = json.loads(proc.stdout.readline())
    proc.wait(60)
    done.set()
    sampler.join()
    # the samples' CLIENT LIST and INFO calls are not the client's: ~1 per primary per 50 ms
    out["cmds_per_job"] = (commands(primaries) - before) / n
    out["peak_per_node"] = peak[0]
    out["load"] = os.getloadavg()[0]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=5000)
    p.add_argument("--enqueues", type=int, default=2000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return 0
    from taskqueue.testing import LocalCluster

    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    with LocalCluster(3, 1) as cluster:
        for r in range(args.runs):
            for v in VARIANTS:
                n = args.jobs if v.startswith("drain") else args.enqueues
                results[v].append(run(cluster, v, n))
                print(f"run {r + 1} {v:14s} {json.dumps(results[v][-1])}", flush=True)
    print()
    for v, rows in results.items():
        cells = []
        for k in ("rate", "client_us_per_job", "cmds_per_job", "peak_per_node"):
            xs = [row[k] for row in rows]
            cells.append(f"{k} {statistics.median(xs):.1f} ({min(xs):.1f}-{max(xs):.1f})")
        print(f"{v:14s} " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
