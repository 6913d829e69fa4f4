"""Redis-side cost per job of the hot scripts (enqueue, fetch, ack), counters and histograms included.

    .venv/bin/python bench/stats_cost.py [--jobs 20000] [--runs 3] [--spread-ms 0]

One worker process drains ``--jobs`` no-op jobs (``--spread-ms N``: each job sleeps a random
0..N ms, so run times and waits spread over many histogram buckets: the worst case for the
number of distinct fields a batch writes). Reported per job, from ``INFO commandstats`` deltas
on a private redis-server: commands run (inside scripts included), HINCRBY calls, and the
microseconds Redis spent in EVALSHA (the scripts' own cost). Median of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import statistics

from taskqueue import TaskQueue, task
from taskqueue.registry import Registry
from taskqueue.testing import RedisServer
from taskqueue.worker import Worker

reg = Registry()


@task(name="sleepy", registry=reg)
async def sleepy(ms: float) -> None:
    if ms:
        await asyncio.sleep(ms / 1000)


def stats(tq: TaskQueue) -> dict[str, dict[str, float]]:
    return {
        k: {"calls": v["calls"], "usec": v["usec"]}
        for k, v in tq.redis.info("commandstats").items()
    }


def delta(before: dict, after: dict, name: str, what: str) -> float:
    key = f"cmdstat_{name}"
    return after.get(key, {}).get(what, 0) - before.get(key, {}).get(what, 0)


def one_run(url: str, jobs: int, spread: float, concurrency: int) -> dict[str, float]:
    tq = TaskQueue(url, registry=reg)
    tq.redis.flushall()
    rnd = random.Random(7)
    before = stats(tq)
    tq.enqueue_many([(sleepy, (rnd.uniform(0, spread),)) for _ in range(jobs)])
    Worker(tq, registry=reg, max_concurrent_tasks=concurrency, queues=["default"]).run(burst=True)
    after = stats(tq)
    calls = sum(v["calls"] for v in after.values()) - sum(v["calls"] for v in before.values())
    fields = sum(len(tq.redis.hkeys(k)) for k in tq.redis.scan_iter("tq:{default}:stats:*"))
    tq.close()
    return {
        "commands_per_job": calls / jobs,
        "hincrby_per_job": delta(before, after, "hincrby", "calls") / jobs,
        "evalsha_usec_per_job": delta(before, after, "evalsha", "usec") / jobs,
        "minute_hash_fields": fields,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--spread-ms", type=float, default=0.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with RedisServer() as server:
        runs = [
            one_run(server.url, args.jobs, args.spread_ms, args.concurrency)
            for _ in range(args.runs)
        ]
    summary = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
    print(json.dumps({"jobs": args.jobs, "spread_ms": args.spread_ms, "runs": args.runs,
                      **summary}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
