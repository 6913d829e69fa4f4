"""Enqueue and drain rates of ONE taskqueue worker process on no-op jobs (median of N runs).

    .venv/bin/python bench/core_rates.py [--jobs 20000] [--runs 3] [--concurrency 50]

Starts its own redis-server on a free loopback port. The side-by-side comparison with the other
task queues is ``make bench`` (bench/README.md); this one isolates the core loop.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time

from taskqueue import TaskQueue, task
from taskqueue.registry import Registry
from taskqueue.testing import RedisServer
from taskqueue.worker import Worker

reg = Registry()


@task(name="noop", registry=reg)
async def noop(i: int) -> int:
    return i


@task(name="noop_sync", registry=reg)
def noop_sync(i: int) -> int:
    return i


def one_run(url: str, jobs: int, concurrency: int, target) -> dict[str, float]:
    tq = TaskQueue(url, registry=reg)
    tq.redis.flushall()
    n_single = min(jobs, 5000)
    t = time.perf_counter()
    for i in range(n_single):
        tq.enqueue(target, i)
    single = n_single / (time.perf_counter() - t)
    tq.redis.flushall()
    t = time.perf_counter()
    tq.enqueue_many([(target, (i,)) for i in range(jobs)])
    bulk = jobs / (time.perf_counter() - t)
    worker = Worker(tq, registry=reg, max_concurrent_tasks=concurrency, queues=["default"])
    t = time.perf_counter()
    worker.run(burst=True)
    drain = worker.processed / (time.perf_counter() - t)
    tq.close()
    return {"enqueue_single_per_s": single, "enqueue_bulk_per_s": bulk, "drain_per_s": drain}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--sync", action="store_true", help="use a sync task (thread pool)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with RedisServer() as server:
        runs = [
            one_run(server.url, args.jobs, args.concurrency, noop_sync if args.sync else noop)
            for _ in range(args.runs)
        ]
    summary = {
        k: {
            "median": round(statistics.median(r[k] for r in runs)),
            "min": round(min(r[k] for r in runs)),
            "max": round(max(r[k] for r in runs)),
        }
        for k in runs[0]
    }
    print(json.dumps({"jobs": args.jobs, "concurrency": args.concurrency, "sync": args.sync,
                      "runs": args.runs, **summary}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
