#!/usr/bin/env python3
"""Single enqueue, interleaved: round 1 of every library, then round 2 ..., each in a fresh
process after an untimed warm-up, so that a busy stretch of a shared machine lands on all.

    python bench/enqueue_interleaved.py taskqueue,huey [--jobs 10000] [--runs 3]
        [--base-tree /path/to/an/older/checkout]   # any name + -base: that tree's code

``taskqueue-floor`` is taskqueue's enqueue script with no client work: every call packed before
the clock starts, then written to a bare socket and its reply read with hiredis. It is the rate a
client that cost nothing would reach, so it bounds what any client-side change can give.
``taskqueue-aio`` is taskqueue's asyncio client (``AsyncTaskQueue``), one enqueue awaited at a
time on one event loop (``taskqueue`` and ``taskqueue-async`` both enqueue with the sync client:
they differ in the worker's task). With ``--base-tree``, ``taskqueue-aio-base`` is that tree's.

Prints enqueues/s, Redis commands per enqueue, Redis CPU µs per enqueue (INFO cpu, the server's
own user+sys time) and client CPU µs per enqueue (the producer process's own CPU time) per run
with the load, then the median and min-max of each. The two CPU figures barely move with the
load; the rate does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
WARMUP = 1000


class Floor:
    """taskqueue's enqueue calls packed ahead (``prepare``), then only sent and read."""

    def __init__(self, url: str) -> None:
        import hiredis
        import tq_sync_app

        from taskqueue import TaskQueue

        self.tq, self.task = TaskQueue(url), tq_sync_app.incr
        self.conn = self.tq.redis.connection_pool.get_connection()
        self.reader = hiredis.Reader()
        self.packed: list[bytes] = []

    def prepare(self, xs: list) -> None:
        from taskqueue.scripts import sha

        tq = self.tq
        tq.run(tq.broker.enqueue([tq._job(self.task, (0,), None)]))  # loads the script
        calls = [tq.broker.enqueue([tq._job(self.task, (x,), None)]) for x in xs]
        self.packed = [b"".join(self.conn.pack_command("EVALSHA", sha(c.script), len(c.keys),
                                                       *c.keys, *c.args)) for c in calls]  # fmt: skip

    def enqueue_seq(self, xs: list) -> None:
        sock, reader = self.conn._sock, self.reader
        for packed in self.packed:
            sock.sendall(packed)
            reply = False
            while reply is False:
                reader.feed(sock.recv(65536))
                reply = reader.gets()

    def close(self) -> None:
        self.tq.close()


class AioClient:
    """taskqueue's asyncio client: each enqueue awaited before the next, on one event loop."""

    def __init__(self, url: str) -> None:
        import asyncio

        import tq_sync_app

        from taskqueue import AsyncTaskQueue

        self.loop = asyncio.new_event_loop()
        self.tq, self.task = AsyncTaskQueue(url), tq_sync_app.incr

    def enqueue_seq(self, xs: list) -> None:
        async def go() -> None:
            enqueue, task = self.tq.enqueue, self.task
            for x in xs:
                await enqueue(task, x)

        self.loop.run_until_complete(go())

    def close(self) -> None:
        self.loop.run_until_complete(self.tq.close())
        self.loop.close()


def child(name: str, url: str, jobs: int) -> None:
    """One timed run in this process; prints one JSON line."""
    sys.path[:0] = [str(BENCH), str(BENCH / "apps")]
    import redis
    from adapters import ADAPTERS

    lib = name.removesuffix("-base")
    if lib in ("taskqueue-floor", "taskqueue-aio"):
        a: Any = Floor(url) if lib == "taskqueue-floor" else AioClient(url)
    else:
        a = ADAPTERS[lib](url)
    prepare = getattr(a, "prepare", lambda xs: None)
    prepare(list(range(WARMUP)))
    a.enqueue_seq(list(range(WARMUP)))
    prepare(list(range(jobs)))
    r = redis.Redis.from_url(url)

    def sample() -> tuple[int, float]:
        calls = sum(int(v["calls"]) for v in r.info("commandstats").values())
        cpu = r.info("cpu")
        return calls, cpu["used_cpu_user"] + cpu["used_cpu_sys"]

    calls0, cpu0 = sample()
    t, own = time.perf_counter(), time.process_time()
    a.enqueue_seq(list(range(jobs)))
    dt, own = time.perf_counter() - t, time.process_time() - own
    calls1, cpu1 = sample()
    a.close()
    print(json.dumps({"rate": jobs / dt, "cmds_per_job": (calls1 - calls0 - 2) / jobs,
                      "redis_us_per_job": (cpu1 - cpu0) / jobs * 1e6,
                      "client_us_per_job": own / jobs * 1e6}))  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("libraries")
    p.add_argument("--jobs", type=int, default=10000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument(
        "--base-tree",
        help="a checkout whose taskqueue runs as any name with -base (taskqueue-base, ...)",
    )
    p.add_argument("--child", nargs=2, metavar=("LIBRARY", "URL"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.jobs)
        return 0
    from taskqueue.testing.server import RedisServer

    names = args.libraries.split(",")
    server = RedisServer().start()
    res: dict[str, list[dict]] = {n: [] for n in names}
    try:
        for _ in range(args.runs):
            for n in names:
                server.client().flushall()
                env = dict(os.environ)
                if n.endswith("-base"):
                    env["PYTHONPATH"] = str(args.base_tree)
                out = subprocess.run([sys.executable, __file__, "x", "--jobs", str(args.jobs),
                                      "--child", n, server.url], env=env, check=True,
                                     capture_output=True, text=True).stdout  # fmt: skip
                d = json.loads(out.strip().splitlines()[-1])
                res[n].append(d)
                print(f"{n:16s} {d['rate']:7.0f}/s  cmds/job {d['cmds_per_job']:5.2f}  redis "
                      f"{d['redis_us_per_job']:5.1f} µs/job  client {d['client_us_per_job']:5.1f} "
                      f"µs/job  load {os.getloadavg()[0]:.1f}",
                      flush=True)  # fmt: skip
    finally:
        server.close()
    sys.path.insert(0, str(BENCH))
    from harness import print_medians

    print_medians(res, ("rate", "cmds_per_job", "redis_us_per_job", "client_us_per_job"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
