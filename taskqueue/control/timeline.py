"""Per-minute counters over the last hour (the dashboard's throughput and failures chart).

The Lua scripts count every job in ``stats:<epoch minute>`` hashes (fields ``<queue>:<counter>``,
kept 2 h), so every host reads the same series. ``minute_series`` is pure; ``read_timeline``
does the reads (one pipelined HGETALL per minute).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis

from ..keys import Keys

COUNTERS = ("enqueued", "started", "succeeded", "failed", "retried", "dead")
#: The stats hashes expire after 2 h: older minutes would read as zero, not as missing data.
MAX_MINUTES = 120


def minute_series(
    minutes: Sequence[int], hashes: Sequence[Mapping[bytes, bytes]]
) -> dict[str, Any]:
    """One value per minute for each counter, overall and per queue.

    ``minutes`` are epoch minutes, oldest first; ``hashes`` the matching ``stats:<minute>``
    contents. Counters are kept per ``<queue>@<task>`` (and plain ``<queue>`` for events with no
    task), added up here per queue; histogram fields (``...:run_ms:<bucket>``) are skipped.
    """
    n = len(minutes)
    total = {c: [0] * n for c in COUNTERS}
    queues: dict[str, dict[str, list[int]]] = {}
    for i, h in enumerate(hashes):
        for field, value in h.items():
            owner, _, counter = field.decode("utf-8", "replace").rpartition(":")
            queue = owner.partition("@")[0]  # ``<queue>@<task>``: the queue's share
            if counter not in total or not queue:
                continue
            v = int(value)
            total[counter][i] += v
            per = queues.setdefault(queue, {c: [0] * n for c in COUNTERS})
            per[counter][i] += v
    return {"minutes": [m * 60 for m in minutes], "total": total, "queues": queues}


def read_timeline(client: redis.Redis, keys: Keys, minutes: int = 60) -> dict[str, Any]:
    """The last ``minutes`` epoch minutes (the current, partial one last), read from Redis.

    Returns ``{"now": s, "minutes": [epoch seconds of each minute], "total": {counter: [...]},
    "queues": {queue: {counter: [...]}}}``.
    """
    minutes = max(1, min(int(minutes), MAX_MINUTES))
    secs, _ = client.time()
    last = int(secs) // 60
    span = list(range(last - minutes + 1, last + 1))
    pipe = client.pipeline(transaction=False)
    for m in span:
        pipe.hgetall(keys.stats_minute(m))
    out = minute_series(span, pipe.execute())
    out["now"] = int(secs)
    return out
