"""The autoscaler's I/O side: what Redis holds, turned into a ``Sample``.

Duties:
1. ``read``: one round trip (a pipeline) per sample: Redis TIME, the length of each queue, the
   per-minute counters and histograms of this minute and the last (kept by the Lua scripts),
   the masters index and the status records of the masters seen last time.
2. ``to_sample``: combine a ``Reading`` with what the master knows of its own workers (``Pool``):
   last-60-s error rate, mean and p95 run time, p95 queue wait, jobs waiting (weighted by queue
   priority) and the workers of the other masters. Pure.
3. ``get_scaling_recommendations(tq)``: plain-language advice from the current metrics.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import redis

from ..keys import Keys
from .policy import Policy, Thresholds
from .sample import Sample, Signals, histogram_mean, histogram_percentile, priority_weights

#: Masters whose status records one sample reads at most.
MAX_MASTERS = 100


@dataclass(frozen=True)
class Pool:
    """This master's own workers, as its loop knows them (no Redis)."""

    workers: int
    slots: int
    busy: int
    idle: int | None = None
    memory_mb: float | None = None


@dataclass
class Reading:
    now_ms: int
    queued: dict[str, int]
    #: Counter and histogram fields over the last 60 s (this minute + the due share of the last).
    counts: dict[str, float]
    master_ids: list[str]
    masters: list[dict[str, Any]] = field(default_factory=list)


def read(client: redis.Redis, keys: Keys, queues: list[str], known: list[str],
         offset_s: float = 0.0) -> Reading:  # fmt: skip
    """One pipeline. ``known``: master ids from the previous reading (their records are read);
    ``offset_s``: Redis time minus this host's, from the previous reading (picks the minutes)."""
    minute = int((time.time() + offset_s) // 60)
    pipe = client.pipeline(transaction=False)
    pipe.time()
    for q in queues:
        pipe.llen(keys.ready(q))
    pipe.hgetall(keys.stats_minute(minute))
    pipe.hgetall(keys.stats_minute(minute - 1))
    pipe.zrange(keys.masters, 0, MAX_MASTERS - 1)
    if known:
        pipe.mget([keys.master(i) for i in known])
    raw = pipe.execute()
    (secs, micros), lengths = raw[0], raw[1 : 1 + len(queues)]
    this, last, ids = raw[1 + len(queues) : 4 + len(queues)]
    records = raw[4 + len(queues)] if known else []
    share = 1.0 - (int(secs) % 60) / 60
    counts: dict[str, float] = defaultdict(float)
    for hash_, weight in ((this, 1.0), (last, share)):
        for k, v in hash_.items():
            counts[k.decode()] += int(v) * weight
    return Reading(
        now_ms=int(secs) * 1000 + int(micros) // 1000, queued=dict(zip(queues, lengths, strict=True)),
        counts=dict(counts), master_ids=[i.decode() for i in ids],
        masters=[json.loads(r) for r in records if r],
    )  # fmt: skip


def _buckets(counts: dict[str, float], queues: list[str], name: str) -> dict[int, float]:
    out: dict[int, float] = defaultdict(float)
    prefixes = tuple(f"{q}:{name}:" for q in queues)
    for k, v in counts.items():
        if k.startswith(prefixes):
            out[int(k.rsplit(":", 1)[1])] += v
    return out


def to_sample(r: Reading, queues: list[str], pool: Pool, at: float, me: str = "") -> Sample:
    weights = priority_weights(queues)
    ok = sum(r.counts.get(f"{q}:succeeded", 0.0) for q in queues)
    failed = sum(r.counts.get(f"{q}:failed", 0.0) for q in queues)
    run, wait = _buckets(r.counts, queues, "run"), _buckets(r.counts, queues, "wait")
    run_p95, wait_p95 = histogram_percentile(run, 0.95), histogram_percentile(wait, 0.95)
    others = sum(int(m.get("actual", 0)) for m in r.masters
                 if m.get("id") != me and set(m.get("queues", [])) & set(queues))  # fmt: skip
    return Sample(
        at=at, workers=pool.workers, slots=pool.slots, busy=pool.busy,
        queued=sum(r.queued.values()), weighted_queued=sum(weights[q] * n for q, n in r.queued.items()),
        pool_workers=pool.workers + others, idle_workers=pool.idle, run_ms=histogram_mean(run),
        error_rate=failed / (ok + failed) if ok + failed else None, memory_mb=pool.memory_mb,
        wait_p95_ms=wait_p95, latency_p95_ms=(wait_p95 or 0) + run_p95 if run_p95 else None,
        finished=round(ok + failed),
    )  # fmt: skip


# -- recommendations --------------------------------------------------------------------------
def get_scaling_recommendations(tq: Any) -> list[str]:
    """Plain-language advice for a ``TaskQueue`` from the namespace's current metrics.

    Reads the queues, the last minute's counters and the masters' status records (their
    autoscaler thresholds when one runs; the defaults otherwise)."""
    client, keys = tq.redis, tq.keys
    queues = sorted(q.decode() for q in client.smembers(keys.queues))
    ids = [i.decode() for i in client.zrange(keys.masters, 0, MAX_MASTERS - 1)]
    reading = read(client, keys, queues, ids)
    return recommendations(reading, queues)


def _pool_of(masters: list[dict[str, Any]]) -> Pool:
    workers = [w for m in masters for w in m.get("workers", []) if w.get("state") == "running"]
    uss = [w["uss"] / 2**20 for w in workers if w.get("uss")]
    return Pool(workers=len(workers), slots=sum(w.get("slots", 0) for w in workers),
                busy=sum(w.get("busy", 0) for w in workers),
                memory_mb=sum(uss) / len(uss) if uss else None)  # fmt: skip


def recommendations(r: Reading, queues: list[str]) -> list[str]:
    """The advice ``get_scaling_recommendations`` gives, from one reading. Pure."""
    pool = _pool_of(r.masters)
    s = to_sample(Reading(r.now_ms, r.queued, r.counts, r.master_ids), queues, pool, 0.0)
    scaled = [m for m in r.masters if (m.get("autoscaler") or {}).get("enabled")]
    auto = scaled[0]["autoscaler"] if scaled else {}
    t = Thresholds(**auto["thresholds"]) if auto.get("thresholds") else Policy().thresholds
    sig = Signals.of(s, auto.get("baseline_ms"))
    target_util = (auto.get("sla") or {}).get(
        "target_worker_utilization", Policy().sla.target_worker_utilization
    )
    out = []
    if not r.masters:
        return [f"No master is running: {s.queued} job(s) wait in {len(queues)} queue(s); start one with "
                "`task-worker worker --enable-autoscaler`."]  # fmt: skip
    for m in r.masters:
        pin = (m.get("autoscaler") or {}).get("pinned")
        if pin is not None:
            out.append(f"Master {m['id']} is pinned at {pin} workers; `tqctl autoscaler unpin "
                       f"--master {m['id']}` hands it back to the autoscaler.")  # fmt: skip
    if sig.error_rate > t.error_rate:
        out.append(f"{sig.error_rate:.0%} of the jobs that finished in the last minute failed (level "
                   f"{t.error_rate:.0%}): fix the failing dependency first; more workers will not help "
                   "(see `tqctl dead`).")  # fmt: skip
    if t.memory_mb and sig.memory_mb > t.memory_mb:
        out.append(f"Workers use {sig.memory_mb:.0f} MiB each (level {t.memory_mb:.0f} MiB): set "
                   "--max-memory-per-child to recycle them, or look for a leak.")  # fmt: skip
    if sig.queue_pressure > t.queue_pressure:
        per = pool.slots / pool.workers if pool.workers else Policy().concurrency
        out.append(f"Queue pressure {sig.queue_pressure:.2f} is above {t.queue_pressure:.2f}: {s.queued} "
                   f"job(s) wait for {pool.workers} worker(s); about {max(1, round(s.queued / per))} more "
                   "worker(s) would absorb them (raise max_workers if the autoscaler is at it).")  # fmt: skip
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
