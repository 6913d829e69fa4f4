#!/usr/bin/env python3
"""Flame graph of one taskqueue worker process draining a queue (py-spy, in bench/.venv-peers).

    bench/.venv-peers/bin/python bench/profile_drain.py [--jobs 100000] [--concurrency 10]
        [--kind sync|async]   # the ``def`` task (default, the headline) or the ``async def`` one
        [--gil]               # sample only the thread holding the GIL: where Python spends CPU

Writes bench/profile-drain.svg, and bench/profile-drain.txt (collapsed stacks of a second,
identical drain) from which it prints the top functions by own and inclusive time.
"""

from __future__ import annotations

import argparse
import collections
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from adapters import APPS, TaskQueueAdapter, TaskQueueAsyncAdapter, _bin  # noqa: E402
from harness import COUNTER  # noqa: E402

from taskqueue.testing.server import RedisServer  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--kind", choices=("sync", "async"), default="sync", help="task kind")
    p.add_argument("--gil", action="store_true", help="only the thread holding the GIL")
    p.add_argument("--out", type=Path, default=BENCH / "profile-drain.svg")
    a = p.parse_args()
    raw = a.out.with_suffix(".txt")
    for fmt, out in (("flamegraph", a.out), ("raw", raw)):  # same drain, recorded twice
        drain(a, fmt, out)
    summarize(raw)


def drain(a: argparse.Namespace, fmt: str, out: Path) -> None:
    server = RedisServer().start()
    try:
        r = server.client()
        adapter = TaskQueueAdapter if a.kind == "sync" else TaskQueueAsyncAdapter
        tq = adapter(server.url, cli=False)
        print(f"queueing {a.jobs:,} jobs ...", flush=True)
        tq.prefill(list(range(a.jobs)))
        gil = ["--gil"] if a.gil else []
        cmd = [_bin("py-spy"), "record", "--rate", str(a.rate), "--format", fmt, "-o", str(out),
               "--threads", *gil, "--", sys.executable, str(APPS / "tq_worker.py"),
               str(a.concurrency), tq.app]  # fmt: skip
        t = time.perf_counter()
        spy = subprocess.Popen(cmd, env=tq.worker_env(a.concurrency), cwd=APPS,
                               start_new_session=True)  # fmt: skip
        while int(r.get(COUNTER) or 0) < a.jobs:
            if spy.poll() is not None:
                sys.exit("worker exited early")
            time.sleep(0.05)
        dt = time.perf_counter() - t
        for child in psutil.Process(spy.pid).children():  # stop the worker, not py-spy:
            child.send_signal(signal.SIGTERM)  # py-spy writes its output when its child exits
        spy.wait(timeout=60)
        print(f"[{fmt}] drained {a.jobs:,} jobs in {dt:.1f}s under py-spy ({a.jobs / dt:,.0f}/s)")
        tq.close()
    finally:
        server.close()


def summarize(raw: Path, top: int = 25) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        count = int(n)
        total += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for f in set(frames):
            inclusive[f] += count
    print(f"\n{total} samples. Top own time:")
    for f, n in own.most_common(top):
        print(f"  {n / total:6.1%}  {f}")
    print("\nTop inclusive time:")
    for f, n in inclusive.most_common(top + 15):
        print(f"  {n / total:6.1%}  {f}")


if __name__ == "__main__":
    main()
