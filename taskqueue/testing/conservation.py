"""The job-state conservation invariant, checked against Redis itself.

Every enqueued job is in exactly one place: a ready queue, a scheduled set, an active lease set,
the dead letter, or finished (succeeded / failed / cancelled) with its record. Every chaos test
ends by calling ``assert_conserved``.

A tombstone (the id of a job cancelled while it waited, left in its ready list by ``cancel.lua``
until a fetch or a purge drops it) is not a waiting job: its place is its record, ``cancelled``.
``tombstone_problems`` checks that each queue's tombstone count (``tombs``, which the queue
lengths subtract) matches the tombstones really in its list.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import redis

from ..keys import Keys

FINISHED = ("succeeded", "failed", "cancelled", "expired")


def _states(client: redis.Redis, keys: Keys, ids: Iterable[str]) -> dict[str, str | None]:
    ids = list(ids)
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hget(keys.job(job_id), "state")
    return {i: s.decode() if s is not None else None
            for i, s in zip(ids, pipe.execute(), strict=True)}  # fmt: skip


def _ready_lists(client: redis.Redis, keys: Keys) -> dict[str, list[str]]:
    queues = sorted(q.decode() for q in client.smembers(keys.queues))
    return {q: [m.decode() for m in client.lrange(keys.ready(q), 0, -1)] for q in queues}


def job_places(client: redis.Redis, keys: Keys, job_ids: Iterable[str]) -> dict[str, list[str]]:
    """For each job id, every place it is found in (should be exactly one)."""
    ids = list(job_ids)
    lists = _ready_lists(client, keys)
    states = _states(client, keys, set(ids).union(*lists.values()))
    where: dict[str, list[str]] = {i: [] for i in ids}
    for q, members in lists.items():
        for job_id in members:
            # A tombstone's place is its record (cancelled), or nowhere once the record expired.
            if job_id in where and states[job_id] not in ("cancelled", None):
                where[job_id].append(f"queued:{q}")
    for q in lists:
        for place, members in (
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
    for job_id in ids:
        state = states[job_id]
        if state in FINISHED:
            where[job_id].append(state)
    return where


def tombstone_problems(client: redis.Redis, keys: Keys) -> list[str]:
    """Queues whose tombstone count is wrong: it must be at least the cancelled ids in the ready
    list, and at most those plus the ids whose record is gone (an expired cancelled record)."""
    lists = _ready_lists(client, keys)
    states = _states(client, keys, set().union(*lists.values()))
    counts = {k.decode(): int(v) for k, v in client.hgetall(keys.tombs).items()}
    problems = []
    for q in sorted(set(lists) | set(counts)):
        members = lists.get(q, [])
        cancelled = sum(states[i] == "cancelled" for i in members)
        gone = sum(states[i] is None for i in members)
        if not cancelled <= counts.get(q, 0) <= cancelled + gone:
            problems.append(f"queue {q}: tombstone count {counts.get(q, 0)}, but its ready list "
                            f"holds {cancelled} cancelled id(s) and {gone} without a record")  # fmt: skip
    return problems


def assert_conserved(
    client: redis.Redis, job_ids: Iterable[str], keys: Keys | None = None
) -> Counter[str]:
    """Assert every job is in exactly one place, and the tombstone counts are right; return how
    many jobs are in each kind of place."""
    keys = keys or Keys()
    where = job_places(client, keys, job_ids)
    lost = [i for i, places in where.items() if not places]
    doubled = {i: p for i, p in where.items() if len(p) > 1}
    assert not lost, f"{len(lost)} job(s) lost (in no queue, set or final state): {lost[:10]}"
    assert not doubled, f"{len(doubled)} job(s) in two places: {list(doubled.items())[:10]}"
    tombs = tombstone_problems(client, keys)
    assert not tombs, "tombstones miscounted: " + "; ".join(tombs)
    return Counter(places[0].split(":")[0] for places in where.values())
