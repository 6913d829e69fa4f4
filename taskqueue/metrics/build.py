"""Turn raw Redis replies into a ``MetricsSnapshot`` (pure: no I/O; ``reader.py`` does the reads).

Fields of the stats hashes (``lua/README.md``): ``<owner>:<counter>``, ``<owner>:run_ms:<bucket>``
and ``<owner>:wait_ms:<bucket>``, where the owner is ``<queue>@<task>`` (the hot scripts count per
queue and task at once, so a batch of one task costs no more fields than a per-queue count), or
a plain ``<queue>`` for events that know no task (released, stalled, purged, duplicates). A
``<queue>@<task>`` field counts for both its queue and ``@<task>``. Queue names hold no ``@``
(``keys.QUEUE_NAME_RE``), and counters and histogram names hold no ``:``, so a field splits from
the right and its owner at the first ``@``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .histogram import Histogram
from .snapshot import (
    WINDOWS,
    MasterMetrics,
    MetricsSnapshot,
    QueueMetrics,
    TaskMetrics,
    Window,
    WorkerMetrics,
)

HISTOGRAMS = ("run_ms", "wait_ms")
TASK_MARK = "@"


@dataclass
class _Acc:
    """Counters and histograms of one owner (queue or task) being added up."""

    counts: dict[str, int] = field(default_factory=dict)
    hists: dict[str, dict[int, int]] = field(default_factory=dict)

    def add_count(self, counter: str, n: int) -> None:
        self.counts[counter] = self.counts.get(counter, 0) + n

    def add_sample(self, hist: str, bucket: int, n: int) -> None:
        h = self.hists.setdefault(hist, {})
        h[bucket] = h.get(bucket, 0) + n

    def merge(self, other: _Acc) -> None:
        for c, n in other.counts.items():
            self.add_count(c, n)
        for name, h in other.hists.items():
            for b, n in h.items():
                self.add_sample(name, b, n)

    def window(self, minutes: int, seconds: float) -> Window:
        return Window(
            minutes,
            seconds,
            dict(self.counts),
            Histogram(dict(self.hists.get("run_ms", {}))),
            Histogram(dict(self.hists.get("wait_ms", {}))),
        )


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def parse_stats(raw: Mapping[Any, Any]) -> dict[str, _Acc]:
    """One stats hash (totals or a minute) -> ``{owner: _Acc}``; owner is a queue or ``@task``.
    Fields it does not understand are skipped."""
    out: dict[str, _Acc] = {}
    for key, value in raw.items():
        f = _text(key)
        try:
            n = int(value)
        except (TypeError, ValueError):
            continue
        head, _, last = f.rpartition(":")
        if not head:
            continue
        owner, _, hist = head.rpartition(":")
        if hist in HISTOGRAMS and owner and last.isdigit():
            for o in _owners(owner):
                out.setdefault(o, _Acc()).add_sample(hist, int(last), n)
        else:
            for o in _owners(head):
                out.setdefault(o, _Acc()).add_count(last, n)
    return out


def _owners(owner: str) -> tuple[str, ...]:
    """``<queue>@<task>`` counts for its queue and for ``@<task>``; others for themselves."""
    queue, at, task = owner.partition(TASK_MARK)
    return (queue, TASK_MARK + task) if at and queue and task else (owner,)


def window_seconds(now_ms: int, minutes: int) -> float:
    """Seconds a window of ``minutes`` whole minutes plus the current one covers."""
    return minutes * 60 + (now_ms % 60_000) / 1000


def _windows(
    per_minute: list[dict[str, _Acc]], owner: str, now_ms: int, windows: Iterable[int]
) -> dict[int, Window]:
    """``per_minute[0]`` is the current minute, ``[k]`` k minutes ago."""
    out: dict[int, Window] = {}
    for minutes in windows:
        acc = _Acc()
        for minute in per_minute[: minutes + 1]:
            if owner in minute:
                acc.merge(minute[owner])
        out[minutes] = acc.window(minutes, window_seconds(now_ms, minutes))
    return out


def _int(v: Any, default: int = 0) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def master_from_record(rec: Mapping[str, Any]) -> MasterMetrics:
    """A master's JSON status record (``master/arbiter.py`` ``status()``) -> MasterMetrics;
    missing fields (an older or newer master) take neutral values."""
    mid = str(rec.get("id", "?"))
    workers = tuple(
        WorkerMetrics(
            master=mid,
            index=_int(w.get("index")),
            pid=_int(w.get("pid")),
            state=str(w.get("state", "?")),
            busy=_int(w.get("busy")),
            slots=_int(w.get("slots")),
            rss=_int(w.get("rss")),
            uss=_int(w.get("uss")),
            cpu=float(w.get("cpu") or 0.0),
            processed=_int(w.get("processed")),
            generation=_int(w.get("generation")),
            jobs=tuple(w.get("jobs") or ()),
            started=float(w.get("started") or 0.0),
        )
        for w in rec.get("workers") or ()
        if isinstance(w, Mapping)
    )
    auto = rec.get("autoscaler")
    return MasterMetrics(
        id=mid,
        host=str(rec.get("host", "")),
        pid=_int(rec.get("pid")),
        started=float(rec.get("started") or 0.0),
        queues=tuple(rec.get("queues") or ()),
        desired=_int(rec.get("desired")),
        actual=_int(rec.get("actual"), len(workers)),
        workers=workers,
        quiet=bool(rec.get("quiet")),
        draining=bool(rec.get("draining")),
        stopping=bool(rec.get("stopping")),
        redis_down=bool(rec.get("redis_down")),
        spawn_halted=bool(rec.get("spawn_halted")),
        version=str(rec.get("version", "")),
        autoscaler=auto if isinstance(auto, Mapping) else None,
        record=rec,
    )


@dataclass(frozen=True)
class RawMetrics:
    """What ``reader.py`` fetched, as Redis returned it (bytes or str both accepted)."""

    now_ms: int
    queues: Iterable[Any]
    paused: Iterable[Any]
    #: queue -> (ready length, scheduled count, active count)
    lengths: Mapping[str, tuple[int, int, int]]
    totals: Mapping[Any, Any]
    #: minute hashes, current minute first, then one per minute back
    minutes: list[Mapping[Any, Any]]
    masters: list[Mapping[str, Any]]
    dead: int


def build_snapshot(raw: RawMetrics, windows: Iterable[int] = WINDOWS) -> MetricsSnapshot:
    windows = tuple(windows)
    totals = parse_stats(raw.totals)
    per_minute = [parse_stats(m) for m in raw.minutes]
    paused = {_text(p) for p in raw.paused}
    names = sorted({_text(q) for q in raw.queues} | set(raw.lengths))
    queues: dict[str, QueueMetrics] = {}
    for name in names:
        q, s, a = raw.lengths.get(name, (0, 0, 0))
        queues[name] = QueueMetrics(
            name, q, s, a, name in paused,
            dict(totals[name].counts) if name in totals else {},
            _windows(per_minute, name, raw.now_ms, windows),
        )  # fmt: skip
    task_names = {o for m in [totals, *per_minute] for o in m if o.startswith(TASK_MARK)}
    tasks = {
        t[1:]: TaskMetrics(
            t[1:],
            dict(totals[t].counts) if t in totals else {},
            _windows(per_minute, t, raw.now_ms, windows),
        )
        for t in sorted(task_names)
    }
    return MetricsSnapshot(
        taken_ms=raw.now_ms,
        queues=queues,
        tasks=tasks,
        masters=tuple(sorted((master_from_record(r) for r in raw.masters), key=lambda m: m.id)),
        dead=raw.dead,
        overall=_overall(queues.values(), windows, raw.now_ms),
        history=tuple(_minute(m, names, raw.now_ms, back) for back, m in enumerate(per_minute)),
    )


def _minute(minute: dict[str, _Acc], queues: Iterable[str], now_ms: int, back: int) -> Window:
    """All queues of one minute hash; ``back`` minutes before the current one."""
    acc = _Acc()
    for q in queues:
        if q in minute:
            acc.merge(minute[q])
    return acc.window(1, 60.0 if back else (now_ms % 60_000) / 1000)


def _overall(queues: Iterable[QueueMetrics], windows: tuple[int, ...], now_ms: int) -> QueueMetrics:
    qs = list(queues)
    totals: dict[str, int] = {}
    for q in qs:
        for c, n in q.totals.items():
            totals[c] = totals.get(c, 0) + n
    merged: dict[int, Window] = {}
    for m in windows:
        parts = [q.windows[m] for q in qs if m in q.windows]
        counts: dict[str, int] = {}
        for w in parts:
            for c, n in w.counts.items():
                counts[c] = counts.get(c, 0) + n
        merged[m] = Window(
            m,
            window_seconds(now_ms, m),
            counts,
            Histogram.merge(w.run_ms for w in parts),
            Histogram.merge(w.wait_ms for w in parts),
        )
    return QueueMetrics(
        "*",
        sum(q.queued for q in qs),
        sum(q.scheduled for q in qs),
        sum(q.active for q in qs),
        False,
        totals,
        merged,
    )
