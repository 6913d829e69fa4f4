"""The pre-fork master on no-op jobs: drain rate, enqueue-to-start latency, idle memory.

    .venv/bin/python bench/master_bench.py [--workers 2] [--jobs 20000] [--runs 3]

Starts its own redis-server on a free loopback port and ``task-worker worker -w N`` on it.
Drain: the master is quiet (TSTP) while N jobs are enqueued, then resumed (CONT); the rate is
N / time until every queue and lease set is empty. Latency: jobs enqueued one at a time, 5 ms
apart, on idle workers; start = the task's own clock, minus the client's clock before enqueue.
Idle memory: RSS and USS (psutil) of the master and each worker after the runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.master_tasks import noop, stamp  # noqa: E402
from taskqueue import TaskQueue  # noqa: E402
from taskqueue.testing import RedisServer, wait_for  # noqa: E402


def drain(tq: TaskQueue, master: subprocess.Popen, n: int) -> float:
    master.send_signal(signal.SIGTSTP)
    time.sleep(0.3)  # let the quiet message reach the workers (bench only)
    tq.enqueue_many([(noop, (i,)) for i in range(n)])
    keys = [tq.keys.ready("default"), tq.keys.active("default")]
    start = time.perf_counter()
    master.send_signal(signal.SIGCONT)
    while True:
        pipe = tq.redis.pipeline(transaction=False)
        pipe.llen(keys[0])
        pipe.zcard(keys[1])
        if sum(pipe.execute()) == 0:
            return n / (time.perf_counter() - start)
        time.sleep(0.005)


def latency(tq: TaskQueue, n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        t0 = time.time()
        job = tq.enqueue(stamp)
        samples.append((tq.result(job, timeout=10) - t0) * 1000)
        time.sleep(0.005)
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--latency-jobs", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    server = RedisServer().start()
    cmd = [sys.executable, "-m", "taskqueue.cli.worker", "worker", "-r", server.url,
           "-w", str(args.workers), "-i", "bench.master_tasks", "--log-level", "WARNING"]  # fmt: skip
    master = subprocess.Popen(cmd, cwd=ROOT)
    try:
        tq = TaskQueue(server.url)
        wait_for(lambda: len(psutil.Process(master.pid).children()) == args.workers, 20, "workers")
        tq.result(tq.enqueue(stamp), timeout=20)
        rates, p50s, p99s = [], [], []
        for run in range(args.runs):
            rates.append(drain(tq, master, args.jobs))
            p50, p99 = latency(tq, args.latency_jobs)
            p50s.append(p50)
            p99s.append(p99)
            print(f"run {run + 1}: drain {rates[-1]:,.0f} jobs/s; latency p50 {p50:.2f} ms, "
                  f"p99 {p99:.2f} ms")  # fmt: skip
        time.sleep(2)  # idle
        proc = psutil.Process(master.pid)
        print(f"\n{args.workers} worker processes, {args.jobs:,} no-op jobs, median of "
              f"{args.runs} runs:")  # fmt: skip
        print(f"  drain rate            {statistics.median(rates):,.0f} jobs/s")
        print(f"  enqueue-to-start p50  {statistics.median(p50s):.2f} ms")
        print(f"  enqueue-to-start p99  {statistics.median(p99s):.2f} ms")
        for p in [proc, *proc.children()]:
            mem = p.memory_full_info()
            title = " ".join(p.cmdline())[:40]
            print(f"  idle {title:<40} pid {p.pid}: RSS {mem.rss / 2**20:.1f} MiB, "
                  f"USS {mem.uss / 2**20:.1f} MiB")  # fmt: skip
    finally:
        master.send_signal(signal.SIGTERM)
        master.wait(timeout=60)
        server.close()


if __name__ == "__main__":
    main()
