#!/usr/bin/env python3
"""Idle memory of a worker tree after a short drain: RSS, USS and PSS of every process.

    python bench/idle_memory.py [--libraries taskqueue,huey] [--runs 3] [--jobs 2000] [--maps]
        [--base-tree /path/to/an/older/checkout --libraries taskqueue-base,taskqueue]
        [--kinds sync|async|sync,async] [--worker-arenas N] [--env NAME=VALUE]

On a private redis-server: start the tree (taskqueue: ``task-worker worker -w 2
--max-concurrent-tasks 10`` importing both ``apps/tq_sync_app`` and ``apps/tq_app``; Huey:
``huey_consumer -k process -w 2``), drain ``--jobs`` jobs of each task kind (taskqueue: a ``def``
and an ``async def`` task), wait 1 s as ``make bench`` does, then read psutil
``memory_full_info`` of each process. Runs are interleaved (run 1 of every library, then run
2 ...). Prints per process and per tree the median and min–max over the runs. ``--maps`` also
prints each process's largest private mappings (the last run), to see what a process owns:
anonymous ones by kind (glibc thread arenas, CPython object arenas, thread stacks, other), and
the tree's Redis connections by client name (unnamed ones are the tasks' own clients).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH / "apps")]
MIB = 1024 * 1024


def mixed_adapter(base: type) -> type:
    """taskqueue with both task kinds registered in one tree: a drain runs each."""

    class Mixed(base):  # type: ignore[misc, valid-type]
        name = "taskqueue"

        kinds = ("sync", "async")

        def __init__(self, url: str) -> None:
            super().__init__(url, cli=True)
            import tq_app

            self.tasks = {"sync": self.task, "async": tq_app.incr}

        def enqueue_bulk(self, xs: list) -> None:
            tasks = [self.tasks[k] for k in self.kinds]
            self.tq.enqueue_many([(t, (x,), None) for x in xs for t in tasks])

        def worker_cmds(self, procs: int, conc: int) -> list[list[str]]:
            cmd = super().worker_cmds(procs, conc)[0]
            return [[*cmd, "--import", "tq_app"]]

    return Mixed


#: glibc's thread arenas are heaps mapped at multiples of this (HEAP_MAX_SIZE on 64-bit).
HEAP_ALIGN = 64 * MIB


def anon_kind(start: int, size: int) -> str:
    """What an anonymous mapping most likely is, from its place and size. Only thread arenas
    are told apart for sure (64 MiB-aligned): the kernel merges adjacent anonymous mappings,
    so many CPython arenas and stacks end up in "other"."""
    if start % HEAP_ALIGN == 0 and size < HEAP_ALIGN:
        return "[anon: malloc thread arenas]"
    if size == MIB:
        return "[anon: 1 MiB, CPython object arenas]"
    if size == 8 * MIB:
        return "[anon: 8 MiB, thread stacks]"
    return "[anon: other]"


def private_maps(pid: int, top: int) -> list[tuple[str, float]]:
    """Private MiB per mapped file, and per kind of anonymous mapping (``anon_kind``), from
    ``/proc/<pid>/smaps``: the largest ``top``, with how many mappings each sums."""
    sizes: dict[str, float] = {}
    count: dict[str, int] = {}
    name = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and not head[0].endswith(":"):
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                name = head[5] if len(head) > 5 and not head[5].startswith("[anon") else None
                name = name or anon_kind(lo, hi - lo)
                count[name] = count.get(name, 0) + 1
            elif head[0] in ("Private_Clean:", "Private_Dirty:") and name:
                sizes[name] = sizes.get(name, 0.0) + int(head[1]) / 1024
    out = [(f"{n} ({count[n]} mappings)", mib) for n, mib in sizes.items() if mib >= 0.05]
    return sorted(out, key=lambda x: -x[1])[:top]


def clients_by_name(r: Any) -> dict[str, int]:
    """The server's connections by client name, the pid dropped (``tq:worker``: 2), less the
    harness's own."""
    out: dict[str, int] = {}
    for c in r.client_list():
        name = c.get("name") or "(unnamed)"
        if name.startswith("tq:"):
            name = name.rsplit(":", 1)[0]
        out[name] = out.get(name, 0) + 1
    out["(unnamed)"] = out.get("(unnamed)", 0) - 1  # the harness's client, asking
    return {k: v for k, v in sorted(out.items()) if v}


def with_path(env: dict[str, str], more: dict[str, str]) -> dict[str, str]:
    """``env`` updated with ``more``, their PYTHONPATHs joined (``more``'s first)."""
    paths = [more.get("PYTHONPATH"), env.get("PYTHONPATH")]
    joined = os.pathsep.join(p for p in paths if p)
    return env | more | ({"PYTHONPATH": joined} if joined else {})


def arena_cap(n: int) -> str:
    """A directory with a ``sitecustomize`` that caps every forked child's malloc arenas at
    ``n``: on the tree's PYTHONPATH, the master installs the fork hook at startup."""
    import tempfile

    d = tempfile.mkdtemp(prefix="tq-arena-cap-")
    Path(d, "sitecustomize.py").write_text(
        "import ctypes, os\n"
        "M_ARENA_MAX = -8  # malloc.h\n"
        f"os.register_at_fork(after_in_child=lambda: ctypes.CDLL(None).mallopt(M_ARENA_MAX, {n}))\n"
    )
    return d


def measure(bench: Any, a: Any, jobs: int, kinds: int, extra_env: dict[str, str]) -> list[dict]:
    """One tree: queue ``jobs`` of each task kind, start the tree, drain, idle 1 s, read."""
    from harness import WorkerTree

    bench.flush()
    xs = list(range(jobs))
    a.enqueue_bulk(xs) if a.bulk_api else a.prefill(xs)
    tree = WorkerTree(a.worker_cmds(2, 10), with_path(a.worker_env(10), extra_env), bench.log_dir)
    try:
        if jobs:
            bench.wait_count(tree, jobs * kinds, 120)
        else:  # no drain: the tree as it boots
            time.sleep(2.0)
        time.sleep(1.0)
        root = tree.roots[0].pid
        procs = []
        for proc in tree.processes():
            info = proc.memory_full_info()
            cmd = " ".join(proc.cmdline())
            procs.append({"role": role(cmd, proc.pid, root), "pid": proc.pid,
                          "rss": info.rss / MIB, "uss": info.uss / MIB, "pss": info.pss / MIB,
                          "threads": proc.num_threads(), "tcp": len(proc.net_connections("tcp")),
                          "maps": private_maps(proc.pid, 12)})  # fmt: skip
        procs[0]["clients"] = clients_by_name(bench.r)
        return procs
    finally:
        tree.stop()


def role(cmd: str, pid: int, root: int) -> str:
    if pid == root:
        return "master"
    if "worker" in cmd and "task-worker" in cmd:
        return "worker " + cmd.split("worker ")[-1].split()[0]
    return "child"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--libraries", default="taskqueue")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--jobs", type=int, default=2000, help="jobs of each task kind")
    p.add_argument("--kinds", default="sync,async", help="taskqueue task kinds to drain")
    p.add_argument("--base-tree", help="a checkout whose taskqueue runs as taskqueue-base")
    p.add_argument("--maps", action="store_true", help="largest private mappings per process")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set in the worker tree's environment (MALLOC_ARENA_MAX=1 ...)",
    )
    p.add_argument(
        "--worker-arenas",
        type=int,
        metavar="N",
        help="cap each forked worker's glibc malloc arenas at N (mallopt M_ARENA_MAX, set in "
        "the child right after the fork: the master keeps glibc's default)",
    )
    args = p.parse_args()
    import psutil
    from adapters import ADAPTERS, TaskQueueAdapter
    from harness import Bench

    from taskqueue.testing.server import RedisServer

    ADAPTERS = dict(ADAPTERS, taskqueue=mixed_adapter(TaskQueueAdapter))
    ADAPTERS["taskqueue"].kinds = tuple(args.kinds.split(","))
    #: taskqueue-base: the same adapter, its tree importing the older checkout's code first.
    ADAPTERS["taskqueue-base"] = ADAPTERS["taskqueue"]
    envs = {"taskqueue-base": {"PYTHONPATH": args.base_tree or ""}}
    server = RedisServer().start()
    os.environ["BENCH_REDIS_URL"] = server.url
    bench = Bench(server.client(), server.proc.pid, BENCH / "results" / "logs")
    names = args.libraries.split(",")
    adapters = {n: ADAPTERS[n](server.url) for n in names}
    kinds = {n: len(args.kinds.split(",")) if n.startswith("taskqueue") else 1 for n in names}
    rows: dict[str, list[list[dict]]] = {n: [] for n in names}
    extra_env = dict(kv.split("=", 1) for kv in args.env)
    cap_dir = arena_cap(args.worker_arenas) if args.worker_arenas else None
    if cap_dir:
        extra_env = with_path(extra_env, {"PYTHONPATH": cap_dir})
    try:
        for run in range(args.runs):  # interleaved: run 1 of every library, then run 2 ...
            for n, a in adapters.items():
                procs = measure(
                    bench, a, args.jobs, kinds[n], with_path(extra_env, envs.get(n, {}))
                )
                rows[n].append(procs)
                if args.maps and run == args.runs - 1:
                    print(f"{n} Redis connections by client name: {procs[0]['clients']}")
                    for pr in procs:
                        print(f"{n} {pr['role']} (pid {pr['pid']}) private MiB:")
                        for path, mib in pr["maps"]:
                            print(f"  {mib:7.2f}  {path}")
    finally:
        for a in adapters.values():
            a.close()
        server.stop()
        if cap_dir:
            shutil.rmtree(cap_dir, ignore_errors=True)
    load = os.getloadavg()[0]
    print(
        f"runs {args.runs}, {args.jobs} jobs per task kind, load1 {load:.2f}, "
        f"psutil {psutil.__version__}"
    )
    print(
        f"{'library':<10} {'process':<10} {'RSS MiB':>20} {'USS MiB':>20} {'PSS MiB':>20} thr tcp"
    )
    for n, runs in rows.items():
        by_role: dict[str, list[dict]] = {}
        for procs in runs:
            for pr in sorted(procs, key=lambda x: (x["role"] != "master", x["role"])):
                by_role.setdefault(pr["role"], []).append(pr)
        totals = [{k: sum(pr[k] for pr in procs) for k in ("rss", "uss", "pss")} | {
            "threads": sum(pr["threads"] for pr in procs),
            "tcp": sum(pr["tcp"] for pr in procs)} for procs in runs]  # fmt: skip
        for r, prs in [*by_role.items(), ("tree", totals)]:
            cells = []
            for k in ("rss", "uss", "pss"):
                vs = [pr[k] for pr in prs]
                cells.append(f"{statistics.median(vs):6.1f} ({min(vs):5.1f}-{max(vs):5.1f})")
            thr = statistics.median(pr["threads"] for pr in prs)
            tcp = statistics.median(pr["tcp"] for pr in prs)
            print(
                f"{n:<10} {r:<10} {cells[0]:>20} {cells[1]:>20} {cells[2]:>20} {thr:>3.0f} {tcp:>3.0f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
