"""Execution accounting: every run of a test task, written where no fault of Redis can reach it.

How to use it (a chaos or failure test)::

    from taskqueue.testing.ledger import Ledger, check_ledger

    ledger = Ledger(tmp_path / "ledger.jsonl")
    m = masters(url, "-w", "2", env=ledger.env(), imports=LEDGER_TASKS)   # workers inherit it
    ids = tq.enqueue_many([("ledger.asleep", (0.01,)) for _ in range(1000)])
    ...
    os.kill(pid, signal.SIGKILL); ledger.fault("sigkill", pid=pid)       # say what you broke
    ...
    report = check_ledger(tq.redis, ids, ledger)                          # raises on a violation

The ledger is a JSON-lines file (``$TASKQUEUE_LEDGER`` in the workers' environment), appended
with ``O_APPEND`` by every process, so a SIGKILLed worker, a full or restarted Redis lose nothing
of it. Records: ``start`` and ``finish`` (outcome ``ok`` / ``error`` / ``cancelled``) of every
run, with the job id, attempt, worker id, pid and time; and ``fault``, written by the test.

Tasks record themselves when wrapped with :func:`recorded` (sync or async), or use the ready-made
tasks of ``taskqueue.testing.ledger_tasks`` (``--import taskqueue.testing.ledger_tasks``).
A recorded task returns ``{"run": "<worker>|<attempt>", "value": <its return value>}``: the
checker uses it to prove that the stored result comes from the run that held the final lease.

:func:`check_ledger` asserts:

1. every job is in exactly one place, and that place is terminal (succeeded, failed, cancelled,
   dead), unless ``terminal=False``;
2. every job ran once, except that a run may follow an earlier one that failed or was cancelled
   (a retry, a release on shutdown), or one that an injected fault hit: a ``fault`` record with
   that run's pid, or without a pid (a Redis outage, say), between the two starts (or up to
   ``LEASED_BEFORE_START`` seconds before the first: the job was leased but not started yet);
   a fault that lasts (``fault_window``) counts over its whole span;
3. no ack landed after its lease moved on: a succeeded job's result names the run of its last
   lease (the record's ``worker`` and ``attempts``), and that run finished ``ok``.

:func:`recovery` measures, from the same file, how long a kind of fault took to recover from:
the delay before each run it hit ran again, and the time until a run finished ok after it. Two
records help it and excuse nothing (``check_ledger`` reads only ``fault`` records):
``healed``, when the test repaired the fault (Redis restarted, a replica promoted), and ``mark``,
a fault that must excuse no rerun (a partition shorter than the lease).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from ..context import current_job
from ..keys import Keys
from ..serialization import decode_result
from .conservation import job_places, tombstone_problems

ENV = "TASKQUEUE_LEDGER"
#: Seconds this process's clock is known to be off (set by a clock-skew test, see ``env``).
SKEW_ENV = "TASKQUEUE_LEDGER_CLOCK_SKEW"
#: A fault this long before a run started may still hit it: the job was leased, not started yet.
LEASED_BEFORE_START = 2.0
TERMINAL = ("succeeded", "failed", "cancelled", "dead", "expired")


class Ledger:
    """An append-only JSON-lines file of runs and faults, shared by every process of a test."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._pid = 0

    @classmethod
    def from_env(cls) -> Ledger | None:
        """The ledger named by ``$TASKQUEUE_LEDGER``, or None when it is not set."""
        path = os.environ.get(ENV)
        return cls(path) if path else None

    def env(self, clock_skew: float = 0.0) -> dict[str, str]:
        """Environment entries that make worker processes write to this ledger. A test that
        runs processes with a skewed clock (libfaketime) passes the skew, so their records
        carry true times and order with everyone else's."""
        env = {ENV: str(self.path)}
        if clock_skew:
            env[SKEW_ENV] = repr(clock_skew)
        return env

    def write(self, ev: str, **fields: Any) -> None:
        """Append one record (a single ``write`` with ``O_APPEND``: lines never interleave)."""
        if self._fd is None or self._pid != os.getpid():  # reopen after a fork
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._pid = os.getpid()
        t = time.time() - float(os.environ.get(SKEW_ENV) or 0)
        line = json.dumps({"ev": ev, "t": t, "pid": os.getpid(), **fields})
        os.write(self._fd, line.encode() + b"\n")

    def fault(self, kind: str, pid: int | None = None, **fields: Any) -> None:
        """Record a fault the test injected (``pid=None``: one that may hit every process)."""
        self.write("fault", kind=kind, target=pid, **fields)

    @contextlib.contextmanager
    def fault_window(self, kind: str, pid: int | None = None) -> Iterator[None]:
        """A fault that lasts (a SIGSTOP until SIGCONT, an outage): every run it overlaps is
        excused, not only those that started near its beginning."""
        start = time.time()
        try:
            yield
        finally:
            self.write("fault", kind=kind, target=pid, since=start)

    def mark(self, kind: str, pid: int | None = None, **fields: Any) -> None:
        """Record a fault for :func:`recovery` only: it excuses no rerun (a partition shorter
        than the lease, which must cause none)."""
        self.write("mark", kind=kind, target=pid, **fields)

    def healed(self, kind: str) -> None:
        """Record that the test repaired fault ``kind`` (Redis restarted, a replica promoted, a
        link healed): :func:`recovery` counts service restored only from runs started after it."""
        self.write("healed", kind=kind)

    def records(self) -> list[dict[str, Any]]:
        """Every complete record so far, in file order (a torn last line is skipped)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_bytes().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def runs(self) -> dict[str, list[Run]]:
        """Runs per job id, in order of their start."""
        runs: dict[str, list[Run]] = defaultdict(list)
        by_key: dict[tuple[str, str, int], Run] = {}
        for rec in self.records():
            if rec["ev"] == "start":
                run = Run(rec["job"], rec["worker"], rec["attempt"], rec["pid"], rec["t"])
                runs[run.job].append(run)
                by_key[(run.job, run.worker, run.attempt)] = run
            elif rec["ev"] == "finish":
                run = by_key.get((rec["job"], rec["worker"], rec["attempt"]))
                if run is not None:
                    run.outcome, run.finished = rec["outcome"], rec["t"]
        for job_runs in runs.values():
            job_runs.sort(key=lambda r: r.started)
        return dict(runs)

    def faults(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["ev"] == "fault"]


@dataclass
class Run:
    """One execution of a job's code."""

    job: str
    worker: str
    attempt: int
    pid: int
    started: float
    outcome: str | None = None  # ok | error | cancelled; None: never finished (killed)
    finished: float | None = None

    @property
    def name(self) -> str:
        return f"{self.worker}|{self.attempt}"


@dataclass
class LedgerReport:
    """What ``check_ledger`` found: places per kind, runs, and the extra runs it excused."""

    places: dict[str, int]
    runs: int
    excused: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _recording() -> Iterator[dict[str, Any]]:
    """Write ``start`` now and ``finish`` with the outcome when the block ends."""
    ledger, job = Ledger.from_env(), current_job()
    if ledger is None or job is None:
        yield {}
        return
    ident = {"job": job.id, "worker": job.worker, "attempt": job.attempt}
    ledger.write("start", task=job.task, **ident)
    outcome = "error"
    try:
        yield ident
        outcome = "ok"
    except BaseException as exc:
        outcome = "error" if isinstance(exc, Exception) else "cancelled"
        raise
    finally:
        ledger.write("finish", outcome=outcome, **ident)


def _mark(ident: dict[str, Any], value: Any) -> Any:
    return {"run": f"{ident['worker']}|{ident['attempt']}", "value": value} if ident else value


def recorded(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a task body so each run writes ``start`` and ``finish`` to the ledger of
    ``$TASKQUEUE_LEDGER`` (no-op when it is unset). Apply it below ``@task``."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def arun(*args: Any, **kwargs: Any) -> Any:
            with _recording() as ident:
                return _mark(ident, await func(*args, **kwargs))

        return arun

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        with _recording() as ident:
            return _mark(ident, func(*args, **kwargs))

    return run


def check_ledger(
    client: redis.Redis,
    job_ids: Iterable[str],
    ledger: Ledger,
    keys: Keys | None = None,
    *,
    terminal: bool = True,
) -> LedgerReport:
    """Check the three rules of the module docstring; raise AssertionError listing violations
    (at most 20), else return the report."""
    keys = keys or Keys()
    ids = list(job_ids)
    where = job_places(client, keys, ids)
    problems: list[str] = []
    for job_id, places in where.items():
        if len(places) != 1:
            problems.append(f"job {job_id} is in {len(places)} places: {places}")
        elif terminal and places[0].split(":")[0] not in TERMINAL:
            problems.append(f"job {job_id} did not finish: it is {places[0]}")
    runs = ledger.runs()
    faults = ledger.faults()
    report = LedgerReport(_count(where), sum(len(runs.get(i, [])) for i in ids))
    for job_id in ids:
        job_runs = runs.get(job_id, [])
        for prev, cur in zip(job_runs, job_runs[1:], strict=False):
            if _retried(prev, cur):
                continue
            hit = _hitting(prev, cur, faults)
            if hit:
                report.excused.append(f"{job_id}: run {prev.name} hit by {hit[0]['kind']}")
            else:
                problems.append(f"job {job_id} ran again ({cur.name}) after run {prev.name} "
                                f"ended {prev.outcome or 'never'}, with no fault injected")  # fmt: skip
    problems += _check_acks(client, keys, ids, where, runs)
    problems += tombstone_problems(client, keys)
    report.violations = problems
    assert not problems, f"{len(problems)} ledger violation(s):\n" + "\n".join(problems[:20])
    return report


def _retried(prev: Run, cur: Run) -> bool:
    """``cur`` is a retry: ``prev`` failed or was cancelled before it started."""
    return prev.outcome in ("error", "cancelled") and prev.finished <= cur.started  # type: ignore[operator]


def _hitting(prev: Run, cur: Run, faults: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The faults that hit run ``prev`` before ``cur`` started (rule 2 of the module docstring)."""
    return [f for f in faults if f.get("target") in (None, prev.pid)
            and prev.started - LEASED_BEFORE_START <= f["t"]
            and f.get("since", f["t"]) <= cur.started]  # fmt: skip


def _check_acks(
    client: redis.Redis,
    keys: Keys,
    ids: list[str],
    where: dict[str, list[str]],
    runs: dict[str, list[Run]],
) -> list[str]:
    """A succeeded job's stored result must come from the run of its final lease."""
    done = [i for i in ids if where[i] == ["succeeded"] and runs.get(i)]
    pipe = client.pipeline(transaction=False)
    for job_id in done:
        pipe.hmget(keys.job(job_id), "worker", "attempts", "result")
    problems = []
    for job_id, (worker, attempts, raw) in zip(done, pipe.execute(), strict=True):
        final = f"{worker.decode()}|{int(attempts)}" if worker and attempts else "?"
        result = decode_result(raw)
        got = result.get("run") if isinstance(result, dict) else None
        if got != final:
            problems.append(f"job {job_id}: result of run {got} acked, but the lease was {final}")
            continue
        ok = [r for r in runs[job_id] if r.name == final and r.outcome == "ok"]
        if not ok:
            problems.append(f"job {job_id}: acked, but its run {final} never finished ok")
    return problems


def _count(where: dict[str, list[str]]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for places in where.values():
        if places:
            out[places[0].split(":")[0]] += 1
    return dict(out)


@dataclass
class Recovery:
    """How long one kind of fault took to recover from, in seconds (see :func:`recovery`)."""

    kind: str
    #: ``fault`` and ``mark`` records of the kind.
    faults: int
    #: Per excused rerun: from the onset of the fault that hit the run before it to its start.
    reruns: list[float] = field(default_factory=list)
    #: Per fault followed by a run that finished ok: from its onset to that run's finish.
    restored: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts, and the median and max of each list in seconds (3 decimals; None if empty)."""
        out: dict[str, Any] = {"faults": self.faults, "reruns": len(self.reruns)}
        for name, values in (("rerun", self.reruns), ("restored", self.restored)):
            out[f"{name}_median_s"] = round(statistics.median(values), 3) if values else None
            out[f"{name}_max_s"] = round(max(values), 3) if values else None
        if len(self.restored) < self.faults:
            out["unrestored"] = self.faults - len(self.restored)
        return out


def recovery(ledger: Ledger, kind: str) -> Recovery:
    """Measure recovery from the faults of ``kind`` in ``ledger``; read only, asserts nothing.

    A fault's *onset* is its record's ``since`` (a :meth:`Ledger.fault_window`: when the fault
    began), else its time ``t``. Two figures:

    - ``reruns``: for each run that a ``fault`` record of ``kind`` hit, the seconds from that
      fault's onset to the start of the job's next run. A fault hits a run when rule 2 of
      :func:`check_ledger` would excuse the next run by it (same ``target`` or none, between
      the two starts, or up to ``LEASED_BEFORE_START`` before the first), and the run did not
      end in an error or a cancel before the onset: a run the fault cut short counts, although
      the check calls its next run a retry (a worker quitting with its master cancels its jobs).
      When several faults of the kind hit the run, the one with the latest onset counts.
    - ``restored`` (service restored): for each ``fault`` or ``mark`` record of ``kind``, the
      seconds from its onset to the earliest *finish* of a run that finished ``ok``, started at
      or after the *resume* time, and ran in a process the record does not target. Resume is
      the first ``healed`` record of the kind at or after the onset, else the onset itself. Runs
      started before resume are left out: when a fault stops every process (Redis down), a
      fetch answered just before it still starts its jobs, which then finish ok without any
      service; the test records ``healed`` so that only runs started after the repair count.
      A fault with no such run is left out of ``restored`` (``summary`` says ``unrestored``).
    """
    records = ledger.records()
    faults = [r for r in records if r["ev"] == "fault" and r.get("kind") == kind]
    marks = [r for r in records if r["ev"] == "mark" and r.get("kind") == kind]
    heals = sorted(r["t"] for r in records if r["ev"] == "healed" and r.get("kind") == kind)
    runs = ledger.runs()
    out = Recovery(kind, len(faults) + len(marks))
    for job_runs in runs.values():
        for prev, cur in zip(job_runs, job_runs[1:], strict=False):
            onsets = [_onset(f) for f in _hitting(prev, cur, faults)]
            if _retried(prev, cur):  # only a fault that came before it ended cut it short
                onsets = [o for o in onsets if o <= prev.finished]  # type: ignore[operator]
            if onsets:
                out.reruns.append(cur.started - max(onsets))
    ok = [(r.started, r.finished, r.pid) for rs in runs.values() for r in rs
          if r.outcome == "ok" and r.finished is not None]  # fmt: skip
    for f in faults + marks:
        onset = _onset(f)
        resume = next((t for t in heals if t >= onset), onset)
        after = [end for start, end, pid in ok if start >= resume and pid != f.get("target")]
        if after:
            out.restored.append(min(after) - onset)
    return out


def _onset(fault: dict[str, Any]) -> float:
    """When a fault began: a window's ``since``, else the record's time."""
    return float(fault.get("since", fault["t"]))
