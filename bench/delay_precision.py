"""Delay precision (issue 18): how late delayed jobs start after their due time, idle and under
load, on a real master.

    .venv/bin/python bench/delay_precision.py --jobs 2000

Starts a private redis-server and one master (2 worker processes), then enqueues, in each
scenario, ``--jobs`` no-op jobs due at one same millisecond 3 s ahead and as many spread evenly
over 3 s; "under load" adds a flood of ready jobs (ten times as many) enqueued just before.
Lateness is the job's ``started_ms`` minus its ``due_ms``, both Redis time from the job record,
so no client clock is involved. Prints p50/p99/max per scenario and writes
bench/results/delay-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from report import save_result  # noqa: E402

from taskqueue import TaskQueue  # noqa: E402
from taskqueue.testing import ledger_tasks  # noqa: E402
from taskqueue.testing.server import RedisServer  # noqa: E402


def lateness(tq: TaskQueue, ids: list[str]) -> list[int]:
    pipe = tq.redis.pipeline(transaction=False)
    for i in ids:
        pipe.hmget(tq.keys.job(i), "due_ms", "started_ms")
    return [int(s) - int(d) for d, s in pipe.execute()]


def summary(values: list[int]) -> dict[str, float]:
    values = sorted(values)
    q = statistics.quantiles(values, n=100)
    return {"n": len(values), "p50_ms": q[49], "p99_ms": q[98], "max_ms": values[-1],
            "min_ms": values[0]}  # fmt: skip


def wait_started(tq: TaskQueue, ids: list[str], timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        pipe = tq.redis.pipeline(transaction=False)
        for i in ids:
            pipe.hget(tq.keys.job(i), "state")
        if all(s == b"succeeded" for s in pipe.execute()):
            return
        time.sleep(0.2)
    raise SystemExit("jobs did not finish in time")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2000)
    args = ap.parse_args()
    server = RedisServer().start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKQUEUE_")}
    master = subprocess.Popen(
        [sys.executable, "-m", "taskqueue.cli.worker", "worker", "-r", server.url, "-w", "2",
         "--import", "taskqueue.testing.ledger_tasks", "--log-level", "WARNING"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    report: dict[str, object] = {"jobs": args.jobs}
    try:
        tq = TaskQueue(server.url)
        time.sleep(3)
        for load in ("idle", "under_load"):
            if load == "under_load":
                tq.enqueue_many([(ledger_tasks.noop, (i,)) for i in range(args.jobs * 10)])
            same = [tq.enqueue_with(ledger_tasks.noop, (i,), delay=3.0) for i in range(args.jobs)]
            spread = [tq.enqueue_with(ledger_tasks.noop, (i,), delay=3.0 * i / args.jobs)
                      for i in range(args.jobs)]  # fmt: skip
            wait_started(tq, same + spread)
            report[load] = {"same_due_ms": summary(lateness(tq, same)),
                            "spread_over_3s": summary(lateness(tq, spread))}  # fmt: skip
            print(load, json.dumps(report[load]), file=sys.stderr, flush=True)
    finally:
        master.terminate()
        master.wait(60)
        server.close()
    save_result("delay", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
