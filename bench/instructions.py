#!/usr/bin/env python3
"""Instructions per job of one worker process, counted by callgrind (independent of what else
runs on the machine): a burst worker drains N and N0 jobs; the difference over N - N0 is the
cost of a job, start-up removed.

    python bench/instructions.py tq_sync_app [--tree PATH] [--jobs 1200] [--base-jobs 200]

Also prints Redis commands per job and EVALSHA µs per job (INFO commandstats) of the same runs.
Needs valgrind. Each run takes a few minutes (callgrind runs Python about 50 times slower).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
WORKER = """
import importlib, logging, os, sys
logging.getLogger("taskqueue").setLevel(logging.WARNING)
importlib.import_module(sys.argv[1])
from taskqueue.worker import Worker
Worker(os.environ["BENCH_REDIS_URL"], queues=["default"], max_concurrent_tasks=10).run(burst=True)
"""
FILL = """
import importlib, os, sys
m = importlib.import_module(sys.argv[1])
from taskqueue import TaskQueue
TaskQueue(os.environ["BENCH_REDIS_URL"]).enqueue_many([(m.incr, (i,), None) for i in range(int(sys.argv[2]))])
"""


def run(server, app: str, tree: str, jobs: int) -> tuple[int, int, int]:
    r = server.client()
    r.flushall()
    env = dict(os.environ, PYTHONPATH=f"{tree}:{BENCH / 'apps'}", BENCH_REDIS_URL=server.url)
    subprocess.run([sys.executable, "-c", FILL, app, str(jobs)], env=env, check=True)
    r.config_resetstat()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        sys.executable, "-c", WORKER, app], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        ir = int(re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M).group(1))
    stats = r.info("commandstats")
    calls = sum(v["calls"] for k, v in stats.items() if k != "cmdstat_config|resetstat")
    usec = stats.get("cmdstat_evalsha", {}).get("usec", 0)
    return ir, calls, usec


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("app", help="bench/apps module: tq_sync_app (def task) or tq_app (async)")
    p.add_argument("--tree", default=str(BENCH.parent), help="checkout whose taskqueue runs")
    p.add_argument("--jobs", type=int, default=1200)
    p.add_argument("--base-jobs", type=int, default=200)
    args = p.parse_args()
    sys.path.insert(0, args.tree)
    from taskqueue.testing.server import RedisServer

    server = RedisServer().start()
    try:
        a = run(server, args.app, args.tree, args.base_jobs)
        b = run(server, args.app, args.tree, args.jobs)
    finally:
        server.close()
    n = args.jobs - args.base_jobs
    print(f"{args.app} ({args.tree}): {(b[0] - a[0]) / n:,.0f} instructions/job in the worker, "
          f"{(b[1] - a[1]) / n:.2f} Redis commands/job, {(b[2] - a[2]) / n:.1f} µs EVALSHA/job")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
