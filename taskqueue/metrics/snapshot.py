"""The metrics snapshot: what Redis holds about a namespace at one instant, as plain values.

Built by ``taskqueue.metrics.build.build_snapshot`` from raw Redis replies (``reader.py`` does the
reading). Everything here is pure: no Redis, no clock; the autoscaler, the SLA and alert rules,
``tqctl`` and the HTTP API compute from it, so every host sees the same numbers.

Shape (stable; fields are only ever added)::

    MetricsSnapshot
      taken_ms        Redis server time of the read (ms since the epoch)
      queues          {name: QueueMetrics}       every queue ever used in the namespace
      tasks           {name: TaskMetrics}        per task name (counters and run time)
      masters         (MasterMetrics, ...)       live supervisors, sorted by id
      dead            jobs in the dead letter now
      overall         QueueMetrics named "*": every queue added up
      history         (Window, ...) all queues, one per epoch minute of the last hour,
                      the current (partial) minute first
    QueueMetrics
      name, queued (ready list), scheduled (delayed, retry waits), active (leased), paused
      totals          {counter: n} since the namespace was created (exact, never expire)
      windows         {minutes: Window} for 1, 5, 15 and 60 minutes
      depth           queued + scheduled + active;  trend_per_s (net inflow over 5 min)
    Window
      minutes         the nominal length; ``seconds`` the span really covered: the current
                      minute so far plus ``minutes`` whole minutes before it (counters are
                      kept per epoch minute, so a window's counts are exact integers)
      counts          {counter: n} within the window
      run_ms, wait_ms Histogram of run times (succeeded and failed attempts) and of queue
                      waits (queued or due until leased); ``summary()`` gives p50/p95/p99
      throughput      finished attempts (succeeded + failed) per second
      error_rate, success_rate   failed / finished, succeeded / finished (None if none)
    MasterMetrics     one supervisor's status record: id, host, pid, started (epoch s),
                      queues, desired/actual workers, quiet/draining/stopping, redis_down,
                      workers (WorkerMetrics), ``autoscaler`` (its autoscaler state, or None),
                      busy/slots/utilization, rss/uss (bytes), processed, uptime_s
    WorkerMetrics     master, index, pid, state, busy, slots, rss, uss (bytes), cpu (%),
                      processed (tasks done), jobs (in flight: id, task, running_s)

Counters: enqueued, started, succeeded, failed (failed attempts, retried or not), retried, dead,
cancelled, released, stalled, purged, duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .histogram import Histogram

COUNTERS = (
    "enqueued", "started", "succeeded", "failed", "retried", "dead",
    "cancelled", "released", "stalled", "purged", "duplicates",
)  # fmt: skip
#: Window lengths in minutes, as the API reports them.
WINDOWS = (1, 5, 15, 60)
#: The window the trend and the "current" rates use.
TREND_WINDOW = 5


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


@dataclass(frozen=True)
class Window:
    """Counters and histograms over the last ``minutes`` minutes (``seconds`` covered)."""

    minutes: int
    seconds: float
    counts: Mapping[str, int] = field(default_factory=dict)
    run_ms: Histogram = field(default_factory=Histogram)
    wait_ms: Histogram = field(default_factory=Histogram)

    def count(self, counter: str) -> int:
        return int(self.counts.get(counter, 0))

    @property
    def finished(self) -> int:
        return self.count("succeeded") + self.count("failed")

    @property
    def throughput(self) -> float:
        """Finished attempts per second."""
        return self.finished / self.seconds if self.seconds > 0 else 0.0

    @property
    def enqueue_rate(self) -> float:
        return self.count("enqueued") / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_rate(self) -> float | None:
        return _ratio(self.count("failed"), self.finished)

    @property
    def success_rate(self) -> float | None:
        return _ratio(self.count("succeeded"), self.finished)

    @property
    def net_inflow(self) -> int:
        """Jobs that joined the waiting sets minus jobs that left them."""
        c = self.count
        return c("enqueued") + c("retried") + c("released") - c("started") - c("purged")

    def as_dict(self) -> dict[str, Any]:
        return {
            "minutes": self.minutes,
            "seconds": round(self.seconds, 3),
            "counts": {c: self.count(c) for c in COUNTERS},
            "throughput_per_s": round(self.throughput, 4),
            "enqueued_per_s": round(self.enqueue_rate, 4),
            "error_rate": _round(self.error_rate),
            "success_rate": _round(self.success_rate),
            "run_ms": self.run_ms.summary(),
            "wait_ms": self.wait_ms.summary(),
        }


def _round(v: float | None, digits: int = 4) -> float | None:
    return None if v is None else round(v, digits)


@dataclass(frozen=True)
class TaskMetrics:
    """Counters and run times of one task name, across queues."""

    name: str
    totals: Mapping[str, int] = field(default_factory=dict)
    windows: Mapping[int, Window] = field(default_factory=dict)

    def window(self, minutes: int = TREND_WINDOW) -> Window:
        return self.windows.get(minutes) or Window(minutes, 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "totals": {c: int(self.totals.get(c, 0)) for c in COUNTERS},
            "windows": {str(m): w.as_dict() for m, w in sorted(self.windows.items())},
        }


@dataclass(frozen=True)
class QueueMetrics:
    """One queue (or ``"*"``, all of them): its depth now, its counters and histograms."""

    name: str
    queued: int = 0
    scheduled: int = 0
    active: int = 0
    paused: bool = False
    totals: Mapping[str, int] = field(default_factory=dict)
    windows: Mapping[int, Window] = field(default_factory=dict)

    @property
    def depth(self) -> int:
        return self.queued + self.scheduled + self.active

    def window(self, minutes: int = TREND_WINDOW) -> Window:
        return self.windows.get(minutes) or Window(minutes, 0.0)

    @property
    def trend_per_s(self) -> float:
        """Net jobs per second joining the waiting sets over the trend window (> 0: growing)."""
        w = self.window(TREND_WINDOW)
        return w.net_inflow / w.seconds if w.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "queued": self.queued,
            "scheduled": self.scheduled,
            "active": self.active,
            "depth": self.depth,
            "paused": self.paused,
            "trend_per_s": round(self.trend_per_s, 4),
            "totals": {c: int(self.totals.get(c, 0)) for c in COUNTERS},
            "windows": {str(m): w.as_dict() for m, w in sorted(self.windows.items())},
        }


@dataclass(frozen=True)
class WorkerMetrics:
    """One worker process, as its master last reported it."""

    master: str
    index: int
    pid: int
    state: str
    busy: int
    slots: int
    rss: int
    uss: int
    cpu: float
    processed: int
    generation: int = 0
    jobs: tuple[Mapping[str, Any], ...] = ()
    started: float = 0.0  # wall clock (s) when the master spawned it; 0: an older master

    def uptime_s(self, now_ms: int) -> float | None:
        return max(0.0, now_ms / 1000 - self.started) if self.started else None

    def as_dict(self, now_ms: int) -> dict[str, Any]:
        up = self.uptime_s(now_ms)
        return {
            "master": self.master, "index": self.index, "pid": self.pid, "state": self.state,
            "started": self.started or None, "uptime_s": None if up is None else round(up, 1),
            "generation": self.generation, "busy": self.busy, "slots": self.slots,
            "utilization": _round(_ratio(self.busy, self.slots)), "rss": self.rss,
            "uss": self.uss, "cpu": self.cpu, "processed": self.processed,
            "jobs": [dict(j) for j in self.jobs],
        }  # fmt: skip


@dataclass(frozen=True)
class MasterMetrics:
    """One live supervisor (its status record in Redis)."""

    id: str
    host: str
    pid: int
    started: float
    queues: tuple[str, ...]
    desired: int
    actual: int
    workers: tuple[WorkerMetrics, ...] = ()
    quiet: bool = False
    draining: bool = False
    stopping: bool = False
    redis_down: bool = False
    spawn_halted: bool = False
    version: str = ""
    #: The autoscaler's state as the master publishes it (``"autoscaler"`` in its status
    #: record), None when it publishes none. The autoscaler issue fills it.
    autoscaler: Mapping[str, Any] | None = None
    #: The whole status record, for fields this class does not name yet.
    record: Mapping[str, Any] = field(default_factory=dict)

    @property
    def busy(self) -> int:
        return sum(w.busy for w in self.workers)

    @property
    def slots(self) -> int:
        return sum(w.slots for w in self.workers)

    @property
    def utilization(self) -> float | None:
        return _ratio(self.busy, self.slots)

    @property
    def rss(self) -> int:
        return sum(w.rss for w in self.workers)

    @property
    def uss(self) -> int:
        return sum(w.uss for w in self.workers)

    @property
    def processed(self) -> int:
        return sum(w.processed for w in self.workers)

    def uptime_s(self, now_ms: int) -> float:
        return max(0.0, now_ms / 1000 - self.started)

    def as_dict(self, now_ms: int) -> dict[str, Any]:
        return {
            "id": self.id, "host": self.host, "pid": self.pid, "version": self.version,
            "started": self.started, "uptime_s": round(self.uptime_s(now_ms), 1),
            "queues": list(self.queues), "desired": self.desired, "actual": self.actual,
            "quiet": self.quiet, "draining": self.draining, "stopping": self.stopping,
            "redis_down": self.redis_down, "spawn_halted": self.spawn_halted,
            "busy": self.busy, "slots": self.slots, "utilization": _round(self.utilization),
            "rss": self.rss, "uss": self.uss, "processed": self.processed,
            "autoscaler": dict(self.autoscaler) if self.autoscaler is not None else None,
            "workers": [w.as_dict(now_ms) for w in self.workers],
        }  # fmt: skip


@dataclass(frozen=True)
class MetricsSnapshot:
    """Everything the metrics consumers need, read from Redis at ``taken_ms``."""

    taken_ms: int
    queues: Mapping[str, QueueMetrics] = field(default_factory=dict)
    tasks: Mapping[str, TaskMetrics] = field(default_factory=dict)
    masters: tuple[MasterMetrics, ...] = ()
    dead: int = 0
    overall: QueueMetrics = field(default_factory=lambda: QueueMetrics("*"))
    history: tuple[Window, ...] = ()

    @property
    def workers(self) -> tuple[WorkerMetrics, ...]:
        return tuple(w for m in self.masters for w in m.workers)

    @property
    def busy_slots(self) -> int:
        return sum(m.busy for m in self.masters)

    @property
    def total_slots(self) -> int:
        return sum(m.slots for m in self.masters)

    @property
    def utilization(self) -> float | None:
        return _ratio(self.busy_slots, self.total_slots)

    def window(self, minutes: int = TREND_WINDOW) -> Window:
        """All queues together over a window."""
        return self.overall.window(minutes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "taken_ms": self.taken_ms,
            "dead": self.dead,
            "busy_slots": self.busy_slots,
            "total_slots": self.total_slots,
            "utilization": _round(self.utilization),
            "overall": self.overall.as_dict(),
            "queues": {n: q.as_dict() for n, q in sorted(self.queues.items())},
            "tasks": {n: t.as_dict() for n, t in sorted(self.tasks.items())},
            "masters": [m.as_dict(self.taken_ms) for m in self.masters],
        }
