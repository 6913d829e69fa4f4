"""Paged lists of a queue's jobs by state (queued, scheduled, active) and of the dead letter.

Every read is bounded: one LRANGE/ZRANGE page plus one HMGET per listed job. The dead letter is
one set for the namespace; filtering it by queue scans it in chunks, and the set itself is
trimmed to at most 10,000 jobs by the scripts. A queued page leaves out tombstones (jobs
cancelled while they waited, whose ids stay in the ready list until a fetch drops them: see
``taskqueue/tombstones.py``), so it can hold fewer than ``limit`` jobs; its total leaves them out.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from ..keys import Keys
from ..tombstones import waiting

STATES = ("queued", "scheduled", "active", "dead")
FIELDS = ("task", "queue", "state", "attempts", "failures", "stalls", "max_retries",
          "enqueued_ms", "started_ms", "finished_ms", "worker", "error", "traceback",
          "history")  # fmt: skip
MAX_LIMIT = 200
_CHUNK = 500


def _int(raw: bytes | None) -> int | None:
    return int(raw) if raw not in (None, b"") else None


def job_dict(job_id: str, values: list[bytes | None]) -> dict[str, Any]:
    """A job record (HMGET of ``FIELDS``) as JSON-ready data; times in epoch ms."""
    r = dict(zip(FIELDS, values, strict=True))
    text = {k: v.decode("utf-8", "replace") if v else None for k, v in r.items()}
    return {
        "id": job_id,
        "task": text["task"],
        "queue": text["queue"],
        "state": text["state"],
        "attempts": _int(r["attempts"]) or 0,
        "failures": _int(r["failures"]) or 0,
        "stalls": _int(r["stalls"]) or 0,
        "max_retries": _int(r["max_retries"]),
        "enqueued_ms": _int(r["enqueued_ms"]),
        "started_ms": _int(r["started_ms"]),
        "finished_ms": _int(r["finished_ms"]),
        "worker": text["worker"],
        "error": text["error"],
        "traceback": text["traceback"],
        "history": json.loads(text["history"]) if text["history"] else [],
    }


def _records(client: redis.Redis, keys: Keys, ids: list[str]) -> list[list[bytes | None]]:
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(keys.job(job_id), FIELDS)
    return pipe.execute()


def _page_ids(
    client: redis.Redis, keys: Keys, queue: str, state: str, offset: int, limit: int
) -> tuple[int, list[tuple[str, int | None]]]:
    """(total, [(id, score)]) of one page; the score is the due time, lease deadline or death."""
    end = offset + limit - 1
    if state == "queued":
        pipe = client.pipeline(transaction=False)
        pipe.llen(keys.ready(queue))
        pipe.lrange(keys.ready(queue), offset, end)
        pipe.hmget(keys.tombs, [queue])
        total, ids, (tombs,) = pipe.execute()
        return waiting(total, {queue: tombs}, queue), [(i.decode(), None) for i in ids]
    key = {"scheduled": keys.scheduled(queue), "active": keys.active(queue)}.get(state, keys.dead)
    pipe = client.pipeline(transaction=False)
    pipe.zcard(key)
    if state == "dead":
        pipe.zrevrange(key, offset, end, withscores=True)
    else:
        pipe.zrange(key, offset, end, withscores=True)
    total, rows = pipe.execute()
    return total, [(i.decode(), int(s)) for i, s in rows]


def _dead_of_queue(
    client: redis.Redis, keys: Keys, queue: str, offset: int, limit: int
) -> tuple[int, list[tuple[str, int | None]]]:
    """Dead jobs of one queue, newest first: scans the (trimmed) dead letter in chunks."""
    total, picked, start = 0, [], 0
    while True:
        rows = client.zrevrange(keys.dead, start, start + _CHUNK - 1, withscores=True)
        if not rows:
            return total, picked
        pipe = client.pipeline(transaction=False)
        for i, _ in rows:
            pipe.hget(keys.job(i.decode()), "queue")
        for (i, score), q in zip(rows, pipe.execute(), strict=True):
            if q is not None and q.decode() == queue:
                if offset <= total < offset + limit:
                    picked.append((i.decode(), int(score)))
                total += 1
        start += _CHUNK


def job_page(
    client: redis.Redis,
    keys: Keys,
    state: str,
    queue: str | None = None,
    offset: int = 0,
    limit: int = 20,
) -> dict[str, Any]:
    """One page of jobs: ``{"state", "queue", "offset", "limit", "total", "jobs": [...]}``.

    ``state`` is one of ``STATES``; ``queue`` is required except for ``dead`` (all queues).
    Each job carries ``score_ms``: due time (scheduled), lease deadline (active), time of death
    (dead), or None (queued). Raises ValueError naming a bad argument.
    """
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    if queue is None and state != "dead":
        raise ValueError(f"listing {state} jobs needs a queue")
    if offset < 0 or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"offset must be >= 0 and limit 1..{MAX_LIMIT}")
    if state == "dead" and queue is not None:
        total, page = _dead_of_queue(client, keys, queue, offset, limit)
    else:
        total, page = _page_ids(client, keys, queue or "", state, offset, limit)
    jobs = []
    for (job_id, score), values in zip(page, _records(client, keys, [i for i, _ in page]),
                                       strict=True):  # fmt: skip
        tombstone = state == "queued" and values[FIELDS.index("state")] == b"cancelled"
        if any(v is not None for v in values) and not tombstone:
            jobs.append({**job_dict(job_id, values), "score_ms": score})
    return {"state": state, "queue": queue, "offset": offset, "limit": limit, "total": total,
            "jobs": jobs}  # fmt: skip
