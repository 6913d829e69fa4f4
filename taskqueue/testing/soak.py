"""Soak under random SIGKILLs: jobs run on real masters while worker processes and whole masters
are killed at seeded random moments; every run is counted by the ledger.

``run_soak`` drives it and returns a ``SoakReport``; ``bench/soak.py`` runs 100,000 jobs from the
command line and a test runs a short version. The same seed gives the same sequence of decisions
(which kind of kill, after how long, which victim by index), though the processes' timing is the
machine's.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis

from ..client import TaskQueue
from . import ledger_tasks  # noqa: F401 - registers the tasks enqueued by name
from .ledger import Ledger, LedgerReport, check_ledger

TASKS = "taskqueue.testing.ledger_tasks"


@dataclass
class SoakReport:
    jobs: int
    seconds: float
    worker_kills: int
    master_kills: int
    ledger: LedgerReport
    #: (seconds since start, sum of the masters' RSS in MiB, Redis used_memory in MiB)
    samples: list[tuple[float, float, float]] = field(default_factory=list)
    #: (seconds since start, that master's age in s, its RSS in MiB): one per master and sample
    ages: list[tuple[float, float, float]] = field(default_factory=list)
    #: keys of the namespace after the run, by kind (``job``, ``done``, ``other:<name>``)
    census: dict[str, int] = field(default_factory=dict)
    #: worker processes replaced by ``max_tasks_per_child`` during the run
    recycles: int = 0

    def rss_at_age(self, low: float, high: float) -> tuple[float, float, int, int]:
        """Mean RSS (MiB) of masters aged ``low``..``high`` s, in the first and the last third of
        the run, and how many samples each mean has: a master killed and restarted is compared
        with masters of its own age, so start-up growth does not read as a leak."""
        end = self.samples[-1][0] if self.samples else 0.0
        first = [rss for t, age, rss in self.ages if low <= age < high and t < end / 3]
        last = [rss for t, age, rss in self.ages if low <= age < high and t >= 2 * end / 3]

        def mean(xs: list[float]) -> float:
            return round(sum(xs) / len(xs), 1) if xs else 0.0

        return mean(first), mean(last), len(first), len(last)

    def summary(self) -> dict[str, Any]:
        third = max(1, len(self.samples) // 3)
        first, last = self.samples[:third], self.samples[-third:]

        def mean(rows: list[tuple[float, float, float]], i: int) -> float:
            return round(sum(r[i] for r in rows) / len(rows), 1) if rows else 0.0

        young = self.rss_at_age(3.0, 6.0)
        old = self.rss_at_age(10.0, 20.0)
        return {
            "jobs": self.jobs,
            "seconds": round(self.seconds, 1),
            "worker_kills": self.worker_kills,
            "master_kills": self.master_kills,
            "runs": self.ledger.runs,
            "extra_runs_excused_by_kills": len(self.ledger.excused),
            "places": self.ledger.places,
            "master_rss_mib_first_third": mean(first, 1),
            "master_rss_mib_last_third": mean(last, 1),
            "redis_used_mib_first_third": mean(first, 2),
            "redis_used_mib_last_third": mean(last, 2),
            "master_rss_mib_at_age_3_6s_first_last_samples": list(young),
            "master_rss_mib_at_age_10_20s_first_last_samples": list(old),
            "worker_recycles": self.recycles,
            "keys_after": self.census,
        }


class _Master:
    def __init__(self, url: str, env: dict[str, str], log: Path, workers: int) -> None:
        cmd = [sys.executable, "-m", "taskqueue.cli.worker", "worker", "-r", url, "-w",
               str(workers), "--import", TASKS, "--log-format", "compact"]  # fmt: skip
        full = {k: v for k, v in os.environ.items() if not k.startswith("TASKQUEUE_")}
        full.update(env)
        self._log = open(log, "ab")  # noqa: SIM115
        self.log_path = log
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=full)
        self.started = time.monotonic()

    def workers(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            return [c for c in psutil.Process(self.proc.pid).children()
                    if "worker" in " ".join(c.cmdline())]  # fmt: skip
        return []

    def rss_mib(self) -> float:
        with contextlib.suppress(psutil.Error):
            return psutil.Process(self.proc.pid).memory_info().rss / 2**20
        return 0.0

    def kill(self) -> None:
        """SIGKILL the master and its workers (a host that lost power)."""
        for p in [*self.workers(), psutil.Process(self.proc.pid)]:
            with contextlib.suppress(psutil.Error):
                p.kill()
        self.proc.wait()
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def _kill_one(
    rng: random.Random,
    pool: list[_Master],
    ledger: Ledger,
    master_share: float,
    counts: dict[str, int],
    respawn: Callable[[int], _Master],
) -> bool:
    """SIGKILL a whole master (its workers die with it; a new master takes its place) or one
    live worker, recording the fault in the ledger first; False when no worker was alive."""
    if rng.random() < master_share:
        i = rng.randrange(len(pool))
        for pid in [pool[i].proc.pid, *(w.pid for w in pool[i].workers())]:
            ledger.fault("master_sigkill", pid=pid)
        pool[i].kill()
        pool[i] = respawn(i)
        counts["master"] += 1
        return True
    live = [w for m in pool for w in m.workers()]
    if not live:
        return False
    victim = live[rng.randrange(len(live))]
    ledger.fault("worker_sigkill", pid=victim.pid)
    with contextlib.suppress(psutil.Error):
        victim.kill()
    counts["worker"] += 1
    return True


def run_soak(
    url: str,
    workdir: Path,
    *,
    jobs: int = 5_000,
    seed: int = 1,
    masters: int = 2,
    workers: int = 2,
    lease_seconds: float = 3.0,
    kill_every: tuple[float, float] = (0.5, 2.0),
    master_kill_share: float = 0.2,
    min_kills: int = 0,
    max_tasks_per_child: int = 0,
    timeout: float = 600.0,
    progress: Callable[[str], None] | None = None,
) -> SoakReport:
    """Enqueue ``jobs`` short ledger jobs and kill processes until every job has finished;
    raise AssertionError (from ``check_ledger``) if a job was lost or ran twice unexcused.

    A kill comes every ``kill_every`` seconds (uniform), and also, so that a fast drain still
    meets at least ``min_kills`` of them, whenever the finished count crosses one of
    ``min_kills`` points spread from 10 % to 80 % of the jobs. A worker kill that finds no live
    worker (its master is booting) waits for the next poll instead of being skipped.
    ``max_tasks_per_child`` > 0 also recycles workers (``workers.max_tasks_per_child``). After
    the run, the namespace's keys are counted by kind (``SoakReport.census``): anything beyond
    the job records and the fixed keys would be a leak."""
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(workdir / "ledger.jsonl")
    env = {**ledger.env(), "TASKQUEUE_WORKERS__LEASE_SECONDS": str(lease_seconds)}
    if max_tasks_per_child:
        env["TASKQUEUE_WORKERS__MAX_TASKS_PER_CHILD"] = str(max_tasks_per_child)
    pool = [_Master(url, env, workdir / f"master-{i}.log", workers) for i in range(masters)]
    tq = TaskQueue(url)
    r = redis.Redis.from_url(url)
    start = time.monotonic()
    ids: list[str] = []
    kinds = ["ledger.noop", "ledger.sleep", "ledger.asleep"]
    for at in range(0, jobs, 1000):
        calls = []
        for i in range(at, min(jobs, at + 1000)):
            name = rng.choice(kinds)
            args = (i,) if name == "ledger.noop" else (rng.choice([0.001, 0.005, 0.02]), i)
            calls.append((name, args, {}))
        ids += tq.enqueue_many(calls)
    report_kills = {"worker": 0, "master": 0}
    samples: list[tuple[float, float, float]] = []
    ages: list[tuple[float, float, float]] = []
    next_kill = time.monotonic() + rng.uniform(*kill_every)
    points = [int(jobs * (0.1 + 0.7 * k / max(1, min_kills - 1))) for k in range(min_kills)]

    def unfinished() -> int:
        lengths = tq.queue_lengths()
        return sum(q.get("queued", 0) + q.get("active", 0) + q.get("scheduled", 0)
                   for q in lengths.values())  # fmt: skip

    left = jobs
    while left:
        now = time.monotonic()
        if now - start > timeout:
            raise AssertionError(f"soak did not finish in {timeout:.0f}s: {left} jobs left")
        if now >= next_kill or (points and jobs - left >= points[0]):
            killed = _kill_one(rng, pool, ledger, master_kill_share, report_kills,
                               lambda i: _Master(url, env, workdir / f"master-{i}.log", workers))  # fmt: skip
            if killed:
                next_kill = now + rng.uniform(*kill_every)
                if points and jobs - left >= points[0]:
                    points.pop(0)
        used = r.info("memory")["used_memory"] / 2**20
        rss = [m.rss_mib() for m in pool]
        samples.append((now - start, sum(rss), used))
        ages += [(now - start, now - m.started, x) for m, x in zip(pool, rss, strict=True) if x]
        left = unfinished()
        if progress:
            progress(f"{jobs - left}/{jobs} finished, kills: {report_kills}")
        time.sleep(0.05)
    for m in pool:
        m.stop()
    seconds = time.monotonic() - start
    ledger_report = check_ledger(r, ids, ledger)
    recycles = sum(p.read_text(errors="replace").count("recycling worker")
                   for p in workdir.glob("master-*.log"))  # fmt: skip
    return SoakReport(jobs, seconds, report_kills["worker"], report_kills["master"],
                      ledger_report, samples, ages, key_census(r, tq.keys), recycles)  # fmt: skip


def key_census(r: redis.Redis, keys: Any) -> dict[str, int]:
    """The namespace's keys by kind: ``job`` and ``done`` (one per job, until ``result_ttl``),
    and ``other:<name>`` (digits shown as ``#``) for every other key: queues, stats, indexes,
    per-master and per-worker keys, marked ``(expiring)`` when they have a TTL. A kind that
    grows with the jobs or the kills and does not expire is a leak.
    ``fields:registered`` and ``fields:masters`` count the entries that SIGKILLed masters left
    in those two (a starting master drops the ones gone stale)."""
    out: dict[str, int] = {}
    for raw in r.scan_iter(match=keys.base + "*", count=5000):
        rest = raw.decode()[len(keys.base) :]
        kind = rest.split(":", 1)[0]
        name = kind if kind in ("job", "done") else "other:" + re.sub(r"\d+", "#", rest)
        if kind not in ("job", "done") and r.pttl(raw) > 0:
            name += " (expiring)"
        out[name] = out.get(name, 0) + 1
    out["fields:registered"] = r.hlen(keys.registered)  # entries of masters not stopped cleanly
    out["fields:masters"] = r.zcard(keys.masters)
    return dict(sorted(out.items()))
