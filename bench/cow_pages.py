#!/usr/bin/env python3
"""Which inherited pages does a forked worker copy, and what was written in them?

    sudo python bench/cow_pages.py [--jobs 2000] [--kinds sync,async] [--top 25]

Needs root (page frame numbers in /proc/<pid>/pagemap). On a private redis-server, this process
imports what the pre-fork master imports (the CLI, the master, ``apps/tq_sync_app`` and
``apps/tq_app``), queues the jobs, lists every object it holds, ``gc.freeze()``s and forks twice:
a worker that drains the jobs and idles 1 s, and a reference child that only sleeps (it keeps
the pages as they were at the fork). A page of a writable mapping is *copied* when the worker's
frame differs from the reference's. Each copied page falls in one of four kinds, from a word by
word diff of the two: writes into objects that existed at the fork, writes only into memory
that held no object then (new objects in the master's freed holes), both, or no net change
(written and restored: reference counts up and down). Written words are then named by the
object they fall in (type; module for code, functions and classes) and the field (refcount,
gc links or body).
"""

from __future__ import annotations

import argparse
import bisect
import collections
import gc
import os
import signal
import struct
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH / "apps")]
PAGE = 4096
GC_HEAD = 16


def objects() -> list[tuple[int, int, Any]]:
    """(start, size, object) of every object reachable from the collector's lists, sorted."""
    seen: dict[int, Any] = {}
    stack = list(gc.get_objects())
    while stack:
        o = stack.pop()
        if id(o) not in seen:
            seen[id(o)] = o
            stack.extend(x for x in gc.get_referents(o) if id(x) not in seen)
    out = []
    for i, o in seen.items():
        head = GC_HEAD if gc.is_tracked(o) else 0
        out.append((i - head, sys.getsizeof(o) + head, o))
    return sorted(out, key=lambda x: x[0])


def label(o: Any) -> str:
    kind = type(o).__name__
    if kind == "code":
        return f"code {Path(o.co_filename).parent.name}"
    if kind == "function" or isinstance(o, type):
        return f"{'class' if isinstance(o, type) else kind} {(o.__module__ or '?').split('.')[0]}"
    return kind


def writable(pid: int) -> list[tuple[int, int, str]]:
    out = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split()
        if "w" in parts[1]:
            a, b = (int(x, 16) for x in parts[0].split("-"))
            out.append((a, b, parts[5] if len(parts) > 5 else "[anon]"))
    return out


def frames(pid: int, a: int, b: int) -> list[int | None]:
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(a // PAGE * 8)
        raw = f.read((b - a) // PAGE * 8)
    vals = struct.unpack(f"{len(raw) // 8}Q", raw)
    return [v & ((1 << 55) - 1) if v >> 63 else None for v in vals]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=2000, help="jobs of each task kind")
    p.add_argument("--kinds", default="sync,async")
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args()
    if os.geteuid() != 0:
        print("needs root: page frame numbers are hidden from other users", file=sys.stderr)
        return 2
    from taskqueue.testing.server import RedisServer

    server = RedisServer().start()
    os.environ["BENCH_REDIS_URL"] = server.url
    import tq_app
    import tq_sync_app

    import taskqueue.cli.worker  # noqa: F401 - what the master imports before it forks
    import taskqueue.master.arbiter  # noqa: F401
    from taskqueue import TaskQueue
    from taskqueue.worker import Worker

    tasks = [{"sync": tq_sync_app.incr, "async": tq_app.incr}[k] for k in args.kinds.split(",")]
    tq = TaskQueue(server.url)
    tq.enqueue_many([(t, (x,), None) for x in range(args.jobs) for t in tasks])
    from taskqueue.master.share import prepare_to_share

    census = objects()
    starts = [s for s, _, _ in census]
    ready_r, ready_w = os.pipe()
    prepare_to_share()  # as the master does before it forks
    worker = os.fork()
    if worker == 0:
        Worker(TaskQueue(server.url), ["default"], 10).run(burst=True)
        time.sleep(1.0)
        os.write(ready_w, b"x")
        time.sleep(3600)
        os._exit(0)
    ref = os.fork()
    if ref == 0:
        time.sleep(3600)
        os._exit(0)
    try:
        os.read(ready_r, 1)
        report(worker, ref, census, starts, args.top)
    finally:
        for pid in (worker, ref):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        server.stop()
    return 0


def report(worker: int, ref: int, census: list, starts: list[int], top: int) -> None:
    mine = {(a, b) for a, b, _ in writable(ref)}
    copied: list[int] = []
    by_map: collections.Counter[str] = collections.Counter()
    for a, b, path in writable(worker):
        if (a, b) in mine:
            for n, (w, r) in enumerate(zip(frames(worker, a, b), frames(ref, a, b), strict=True)):
                if w is not None and r is not None and w != r:
                    copied.append(a + n * PAGE)
                    by_map[path] += 1
    mib = PAGE / 2**20
    print(f"worker pages copied from the master: {len(copied) * mib:.2f} MiB")
    for path, n in by_map.most_common(5):
        print(f"  {n * mib:6.2f} MiB  {path}")
    kinds: collections.Counter[str] = collections.Counter()
    share: collections.Counter[tuple[str, str]] = collections.Counter()
    with open(f"/proc/{worker}/mem", "rb") as wm, open(f"/proc/{ref}/mem", "rb") as rm:
        for page in copied:
            wm.seek(page)
            rm.seek(page)
            new, old = wm.read(PAGE), rm.read(PAGE)
            live, free = collections.Counter(), 0
            for off in range(0, PAGE, 8):
                if new[off : off + 8] == old[off : off + 8]:
                    continue
                addr = page + off
                j = bisect.bisect_right(starts, addr) - 1
                if j >= 0 and addr < starts[j] + census[j][1]:
                    rel = addr - starts[j] - (GC_HEAD if gc.is_tracked(census[j][2]) else 0)
                    field = "refcount" if rel == 0 else "gc links" if rel < 0 else "body"
                    live[(label(census[j][2]), field)] += 1
                else:
                    free += 1
            kinds[
                "no net change (written and restored)" if not (live or free)
                else "objects from before the fork" if not free
                else "memory free at the fork" if not live
                else "both"
            ] += 1  # fmt: skip
            for key in live:
                share[key] += 1 / len(live)
    for kind, n in kinds.most_common():
        print(f"  {n * mib:6.2f} MiB  {kind}")
    print("pages with writes into objects from before the fork, shared out by what was written:")
    for (what, field), n in share.most_common(top):
        print(f"  {n * mib:6.3f} MiB  {what} ({field})")


if __name__ == "__main__":
    sys.exit(main())
