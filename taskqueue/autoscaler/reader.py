"""The autoscaler's I/O side: the metrics snapshot turned into a ``Sample``; recommendations.

Duties:
1. ``read``: the namespace's ``MetricsSnapshot`` with the one-minute window only
   (``taskqueue.metrics.read_snapshot``: three round trips), once per sample.
2. ``sample_from_snapshot``: the adapter from the snapshot and what the master knows of its own
   workers (``Pool``) to a ``Sample``: jobs waiting in the master's queues (weighted by queue
   priority), the last minute's error rate, mean run time, p95 queue wait and latency, and the
   workers of the other masters serving the same queues. Pure.
3. ``get_scaling_recommendations(tq)``: plain-language advice from the current metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from ..keys import Keys
from ..metrics import Histogram, MetricsSnapshot, read_snapshot
from .policy import Policy, Thresholds
from .sample import Sample, Signals, priority_weights

#: The window (minutes) the autoscaler judges rates and durations over.
WINDOW = 1


@dataclass(frozen=True)
class Pool:
    """This master's own workers, as its loop knows them (no Redis)."""

    workers: int
    slots: int
    busy: int
    idle: int | None = None
    memory_mb: float | None = None


def read(client: redis.Redis, keys: Keys) -> MetricsSnapshot:
    return read_snapshot(client, keys, windows=(WINDOW,))


def sample_from_snapshot(snap: MetricsSnapshot, queues: list[str], pool: Pool, at: float,
                         me: str = "") -> Sample:  # fmt: skip
    weights = priority_weights(queues)
    mine = [snap.queues[q] for q in queues if q in snap.queues]
    windows = [q.window(WINDOW) for q in mine]
    ok = sum(w.count("succeeded") for w in windows)
    failed = sum(w.count("failed") for w in windows)
    run = Histogram.merge(w.run_ms for w in windows)
    wait_p95 = Histogram.merge(w.wait_ms for w in windows).percentile(0.95)
    run_p95 = run.percentile(0.95)
    others = sum(m.actual for m in snap.masters if m.id != me and set(m.queues) & set(queues))
    return Sample(
        at=at, workers=pool.workers, slots=pool.slots, busy=pool.busy,
        queued=sum(q.queued for q in mine), weighted_queued=sum(weights[q.name] * q.queued for q in mine),
        pool_workers=pool.workers + others, idle_workers=pool.idle, run_ms=run.mean(),
        error_rate=failed / (ok + failed) if ok + failed else None, memory_mb=pool.memory_mb,
        wait_p95_ms=wait_p95, latency_p95_ms=(wait_p95 or 0.0) + run_p95 if run_p95 is not None else None,
        finished=ok + failed,
    )  # fmt: skip


# -- recommendations --------------------------------------------------------------------------
def get_scaling_recommendations(tq: Any) -> list[str]:
    """Plain-language advice for a ``TaskQueue`` from the namespace's current metrics (its
    queues, the last minute's counters, the masters' status records and, when one runs, their
    autoscaler thresholds; the defaults otherwise)."""
    return recommendations(read(tq.redis, tq.keys))


def _pool_of(snap: MetricsSnapshot) -> Pool:
    workers = [w for w in snap.workers if w.state == "running"]
    uss = [w.uss / 2**20 for w in workers if w.uss]
    return Pool(workers=len(workers), slots=sum(w.slots for w in workers),
                busy=sum(w.busy for w in workers), memory_mb=sum(uss) / len(uss) if uss else None)  # fmt: skip


def recommendations(snap: MetricsSnapshot) -> list[str]:
    """The advice ``get_scaling_recommendations`` gives, from one snapshot. Pure."""
    pool, queues = _pool_of(snap), sorted(snap.queues)
    s = sample_from_snapshot(snap, queues, pool, 0.0, me="*")
    s = Sample(**{**vars(s), "pool_workers": pool.workers, "weighted_queued": float(s.queued)})
    autos = [m.autoscaler for m in snap.masters if m.autoscaler and m.autoscaler.get("enabled")]
    auto: Any = autos[0] if autos else {}
    t = Thresholds(**auto["thresholds"]) if auto.get("thresholds") else Policy().thresholds
    target_util = (auto.get("sla") or {}).get(
        "target_worker_utilization", Policy().sla.target_worker_utilization
    )
    sig = Signals.of(s, auto.get("baseline_ms"))
    if not snap.masters:
        return [f"No master is running: {s.queued} job(s) wait in {len(queues)} queue(s); start one with "
                "`task-worker worker --enable-autoscaler`."]  # fmt: skip
    out = [f"Master {m.id} is pinned at {m.autoscaler['pinned']} workers; `tqctl autoscaler unpin --master "
           f"{m.id}` hands it back to the autoscaler." for m in snap.masters
           if m.autoscaler and m.autoscaler.get("pinned") is not None]  # fmt: skip
    if sig.error_rate > t.error_rate:
        out.append(f"{sig.error_rate:.0%} of the jobs that finished in the last minute failed (level "
                   f"{t.error_rate:.0%}): fix the failing dependency first; more workers will not help "
                   "(see `tqctl dead`).")  # fmt: skip
    if t.memory_mb and sig.memory_mb > t.memory_mb:
        out.append(f"Workers use {sig.memory_mb:.0f} MiB each (level {t.memory_mb:.0f} MiB): set "
                   "--max-memory-per-child to recycle them, or look for a leak.")  # fmt: skip
    if sig.queue_pressure > t.queue_pressure:
        per = pool.slots / pool.workers if pool.workers else Policy().concurrency
        out.append(f"{s.queued} job(s) wait for {pool.workers} worker(s) (pressure {sig.queue_pressure:.2f} "
                   f"> {t.queue_pressure:.2f}): about {max(1, round(s.queued / per))} more worker(s) would "
                   "absorb them (raise max_workers if the autoscaler is at it).")  # fmt: skip
    if sig.utilization > t.worker_utilization:
        out.append(f"Workers are {sig.utilization:.0%} busy (level {t.worker_utilization:.0%}): add workers "
                   f"to bring utilization toward {target_util:.0%}.")  # fmt: skip
    elif pool.workers > 1 and not s.queued and sig.utilization < target_util / 2:
        out.append(f"Workers are {sig.utilization:.0%} busy with nothing waiting: fewer workers would do "
                   "(lower min_workers, or let the autoscaler scale down).")  # fmt: skip
    if sig.complexity > t.task_complexity:
        out.append(
            f"Jobs take {sig.complexity:.1f}x their usual run time (level {t.task_complexity:.1f}x)."
        )
    return out or ["Metrics are within thresholds: no change recommended."]
