"""Read one namespace's metrics from Redis into a ``MetricsSnapshot`` (the only I/O of the package).

Three round trips, all keys of one hash slot (Redis Cluster safe), nothing unbounded beyond
the namespace's queue list and live masters: (1) server time (TIME, alone: a Redis Cluster
pipeline refuses keyless commands); (2) pipelined: queue names, paused queues, dead-letter
size, the totals hash, the masters index and the tombstone counts; (3) pipelined: the minute
hashes of the last hour, each queue's three lengths (waiting less its tombstones, see
``taskqueue/tombstones.py``) and the masters' status records.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis

from ..connection import redis_ms
from ..control.client import STALE_MS
from ..keys import Keys
from ..tombstones import waiting
from .build import RawMetrics, build_snapshot
from .diagnostics import OVERDUE_MS
from .snapshot import WINDOWS, MetricsSnapshot

#: Masters whose index entry is older than this are not read (their record has expired anyway).


def read_raw(client: redis.Redis, keys: Keys, minutes: int = max(WINDOWS)) -> RawMetrics:
    """Fetch what ``build_snapshot`` needs, as Redis returns it."""
    now_ms = redis_ms(client)
    pipe = client.pipeline(transaction=False)
    pipe.smembers(keys.queues)
    pipe.smembers(keys.paused)
    pipe.zcard(keys.dead)
    pipe.hgetall(keys.stats)
    pipe.zrangebyscore(keys.masters, now_ms - STALE_MS, "+inf")  # scored in Redis time
    pipe.hgetall(keys.tombs)
    queues, paused, dead, totals, master_ids, tombs = pipe.execute()
    minute = now_ms // 60_000
    names = sorted(q.decode() if isinstance(q, bytes) else q for q in queues)
    ids = [i.decode() if isinstance(i, bytes) else i for i in master_ids]

    pipe = client.pipeline(transaction=False)
    for back in range(minutes + 1):
        pipe.hgetall(keys.stats_minute(minute - back))
    for q in names:
        pipe.llen(keys.ready(q))
        pipe.zcard(keys.scheduled(q))
        pipe.zcard(keys.active(q))
    for i in ids:  # one GET each: Redis Cluster pipelines refuse MGET
        pipe.get(keys.master(i))
    out = pipe.execute()
    hashes, rest = out[: minutes + 1], out[minutes + 1 :]
    lengths = {q: (waiting(rest[3 * i], tombs, q), rest[3 * i + 1], rest[3 * i + 2])
               for i, q in enumerate(names)}  # fmt: skip
    records = _records(rest[3 * len(names) :])
    return RawMetrics(now_ms, names, paused, lengths, totals, hashes, records, dead)


def _records(raw: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for r in raw:
        if not r:
            continue
        try:
            rec = json.loads(r)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def read_snapshot(
    client: redis.Redis, keys: Keys, windows: Iterable[int] = WINDOWS
) -> MetricsSnapshot:
    """The namespace's metrics now. ``windows``: window lengths in minutes (at most 60 back
    are kept, the minute hashes expire after two hours)."""
    windows = tuple(windows)
    return build_snapshot(read_raw(client, keys, max(windows, default=0)), windows)


def read_lateness(
    client: redis.Redis, keys: Keys, queues: Iterable[str], now_ms: int
) -> tuple[dict[str, int], dict[str, int]]:
    """Per queue: (leases past their deadline, scheduled jobs past ``OVERDUE_MS``); ZCOUNTs."""
    names = list(queues)
    pipe = client.pipeline(transaction=False)
    for q in names:
        pipe.zcount(keys.active(q), "-inf", now_ms)
        pipe.zcount(keys.scheduled(q), "-inf", now_ms - OVERDUE_MS)
    raw = pipe.execute()
    return (
        {q: int(raw[2 * i]) for i, q in enumerate(names)},
        {q: int(raw[2 * i + 1]) for i, q in enumerate(names)},
    )
