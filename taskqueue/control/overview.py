"""Read-only views computed from Redis: queue lengths and per-minute rates (every host sees the
same numbers, since they come from the counters the Lua scripts keep)."""

from __future__ import annotations

from typing import Any

import redis

from ..keys import Keys
from ..tombstones import waiting

COUNTERS = ("enqueued", "started", "succeeded", "failed", "retried", "dead")


def last_minute_counts(client: redis.Redis, keys: Keys) -> dict[bytes, float]:
    """Counter values per queue (``<queue>:<counter>``) over the last 60 s: this minute so far
    plus the matching share of the previous minute (the scripts count per epoch minute, per
    queue and task)."""
    secs, _ = client.time()
    minute, into = divmod(int(secs), 60)
    now, prev = (
        client.hgetall(keys.stats_minute(minute)),
        client.hgetall(keys.stats_minute(minute - 1)),
    )
    share = 1.0 - into / 60
    out: dict[bytes, float] = {}
    for k in set(now) | set(prev):
        owner, _, counter = k.rpartition(b":")
        key = owner.partition(b"@")[0] + b":" + counter  # ``<queue>@<task>`` counts for its queue
        out[key] = out.get(key, 0) + int(now.get(k, 0)) + int(prev.get(k, 0)) * share
    return out


def queue_overview(client: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    """One row per queue: queued, scheduled, active, paused, and each counter over the last
    60 s (``<counter>_per_min``)."""
    queues = sorted(q.decode() for q in client.smembers(keys.queues))
    last = last_minute_counts(client, keys)
    pipe = client.pipeline(transaction=False)
    for q in queues:
        pipe.llen(keys.ready(q))
        pipe.zcard(keys.scheduled(q))
        pipe.zcard(keys.active(q))
    pipe.smembers(keys.paused)
    pipe.hgetall(keys.tombs)
    *raw, paused, tombs = pipe.execute()
    rows = []
    for i, q in enumerate(queues):
        row: dict[str, Any] = {
            "queue": q,
            "queued": waiting(raw[3 * i], tombs, q),
            "scheduled": raw[3 * i + 1],
            "active": raw[3 * i + 2],
            "paused": q.encode() in paused,
        }
        for c in COUNTERS:
            row[f"{c}_per_min"] = round(last.get(f"{q}:{c}".encode(), 0))
        rows.append(row)
    return rows


def dead_count(client: redis.Redis, keys: Keys) -> int:
    return client.zcard(keys.dead)
