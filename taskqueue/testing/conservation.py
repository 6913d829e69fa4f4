"""The job-state conservation invariant, checked against Redis itself.

Every enqueued job is in exactly one place: a ready queue, a scheduled set, an active lease set,
the dead letter, or finished (succeeded / failed / cancelled) with its record. Every chaos test
ends by calling ``assert_conserved``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import redis

from ..keys import Keys

FINISHED = ("succeeded", "failed", "cancelled", "expired")


def job_places(client: redis.Redis, keys: Keys, job_ids: Iterable[str]) -> dict[str, list[str]]:
    """For each job id, every place it is found in (should be exactly one)."""
    ids = list(job_ids)
    queues = [q.decode() for q in client.smembers(keys.queues)]
    where: dict[str, list[str]] = {i: [] for i in ids}
    for q in queues:
        for place, members in (
            ("queued", client.lrange(keys.ready(q), 0, -1)),
            ("scheduled", client.zrange(keys.scheduled(q), 0, -1)),
            ("active", client.zrange(keys.active(q), 0, -1)),
        ):
            for m in members:
                job_id = m.decode()
                if job_id in where:
                    where[job_id].append(f"{place}:{q}")
    for m in client.zrange(keys.dead, 0, -1):
        if m.decode() in where:
            where[m.decode()].append("dead")
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hget(keys.job(job_id), "state")
    for job_id, state in zip(ids, pipe.execute(), strict=True):
        if state is not None and state.decode() in FINISHED:
            where[job_id].append(state.decode())
    return where


def assert_conserved(
    client: redis.Redis, job_ids: Iterable[str], keys: Keys | None = None
) -> Counter[str]:
    """Assert every job is in exactly one place; return how many are in each kind of place."""
    keys = keys or Keys()
    where = job_places(client, keys, job_ids)
    lost = [i for i, places in where.items() if not places]
    doubled = {i: p for i, p in where.items() if len(p) > 1}
    assert not lost, f"{len(lost)} job(s) lost (in no queue, set or final state): {lost[:10]}"
    assert not doubled, f"{len(doubled)} job(s) in two places: {list(doubled.items())[:10]}"
    return Counter(places[0].split(":")[0] for places in where.values())
