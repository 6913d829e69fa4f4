"""Drain rates on one Redis and on a Redis Cluster, and the cost of acknowledged enqueues.

    .venv/bin/python bench/scaling.py [--jobs 20000] [--procs 3] [--json out.json]

Scenarios, each with the same number of worker processes (``--procs``, one asyncio Worker each,
in burst mode) draining ``--jobs`` no-op jobs enqueued beforehand:
1. one redis-server, one namespace;
2. a 3-primary cluster (one replica each), one namespace: every job on one shard;
3. the same cluster, 3 namespaces whose hash slots are on the 3 different primaries, the jobs
   and the processes split evenly between them.
Then the cost per enqueue of ``[redis] min_replicas_acked = 1`` (WAIT on the enqueue's own
connection) against plain enqueues, one at a time, on the cluster.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

from redis.cluster import key_slot

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskqueue import TaskQueue, task  # noqa: E402
from taskqueue.connection import RedisSettings  # noqa: E402
from taskqueue.registry import Registry  # noqa: E402
from taskqueue.testing import LocalCluster, RedisServer  # noqa: E402
from taskqueue.testing.cluster import SLOTS  # noqa: E402
from taskqueue.worker import Worker  # noqa: E402

REG = Registry()


@task(name="bench.noop", registry=REG)
def noop(i: int = 0) -> int:
    return i


def namespaces_on_each_shard(n: int) -> list[str]:
    """n namespace names whose slots fall in n different equal slot ranges (the LocalCluster
    layout: primary i owns slots [i*16384/n, (i+1)*16384/n))."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < n:
        ns = f"ns{i}"
        shard = key_slot(f"tq:{{{ns}}}:".encode()) * n // SLOTS
        found.setdefault(shard, ns)
        i += 1
    return [found[s] for s in sorted(found)]


def _work(url: str, namespace: str, ready, go) -> None:  # noqa: ANN001
    tq = TaskQueue(url, namespace=namespace, registry=REG)
    worker = Worker(tq, registry=REG, max_concurrent_tasks=50, queues=["default"])
    ready.release()
    go.wait()
    worker.run(burst=True)


def drain(url: str, namespaces: list[str], jobs: int, procs: int) -> float:
    """Enqueue ``jobs`` split over ``namespaces``, then time ``procs`` burst workers (split over
    the namespaces) until all exit; returns jobs per second."""
    per_ns = jobs // len(namespaces)
    for ns in namespaces:
        tq = TaskQueue(url, namespace=ns, registry=REG)
        tq.enqueue_many([(noop, (i,), {}) for i in range(per_ns)])
        tq.close()
    ctx = mp.get_context("spawn")
    ready, go = ctx.Semaphore(0), ctx.Event()
    workers = [ctx.Process(target=_work, args=(url, namespaces[i % len(namespaces)], ready, go))
               for i in range(procs)]  # fmt: skip
    for p in workers:
        p.start()
    for _ in workers:  # imports and connections are not timed
        ready.acquire()
    t0 = time.perf_counter()
    go.set()
    for p in workers:
        p.join()
    elapsed = time.perf_counter() - t0
    for ns in namespaces:
        tq = TaskQueue(url, namespace=ns, registry=REG)
        left = tq.queue_lengths().get("default", {})
        assert not left.get("queued") and not left.get("active"), left
        tq.close()
    return per_ns * len(namespaces) / elapsed


def enqueue_cost(url: str, n: int, acked: int) -> float:
    """Mean microseconds per enqueue, one at a time (after a warm-up)."""
    tq = TaskQueue(RedisSettings(url, min_replicas_acked=acked), namespace="cost", registry=REG)
    for i in range(200):
        tq.enqueue(noop, i)
    samples = []
    for i in range(n):
        t = time.perf_counter()
        tq.enqueue(noop, i)
        samples.append(time.perf_counter() - t)
    tq.close()
    return statistics.mean(samples) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=20_000)
    ap.add_argument("--procs", type=int, default=3)
    ap.add_argument("--enqueues", type=int, default=2000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    out: dict[str, float] = {}
    with RedisServer() as server:
        out["one_node"] = drain(server.url, ["default"], args.jobs, args.procs)
        print(f"one redis-server, 1 namespace:  {out['one_node']:8.0f} jobs/s", flush=True)
    with LocalCluster(3, 1) as cluster:
        out["cluster_1ns"] = drain(cluster.url, ["default"], args.jobs, args.procs)
        print(f"cluster, 1 namespace:           {out['cluster_1ns']:8.0f} jobs/s", flush=True)
        spread = namespaces_on_each_shard(3)
        out["cluster_3ns"] = drain(cluster.url, spread, args.jobs, args.procs)
        print(f"cluster, 3 namespaces {spread}: {out['cluster_3ns']:8.0f} jobs/s", flush=True)
        out["enqueue_us"] = enqueue_cost(cluster.url, args.enqueues, 0)
        out["enqueue_acked_us"] = enqueue_cost(cluster.url, args.enqueues, 1)
        print(f"enqueue on the cluster: {out['enqueue_us']:.0f} us; with min_replicas_acked=1: "
              f"{out['enqueue_acked_us']:.0f} us (+{out['enqueue_acked_us'] - out['enqueue_us']:.0f} us)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({**out, "jobs": args.jobs, "procs": args.procs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
