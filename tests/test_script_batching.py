"""What the hot scripts batch: one ZADD/SADD per fetch, one ZREM/SREM per set per ack, the
minute hash's PEXPIRE only when it is new, the wake list's LTRIM only past 128 tokens. Each
test checks the state the batching must leave, so that a cheaper script stays a correct one."""

from __future__ import annotations

from datetime import datetime

import pytest

from taskqueue.serialization import encode_result
from taskqueue.testing import wait_for

pytestmark = pytest.mark.smoke


def _minute_hashes(tq) -> list[str]:
    return [k.decode() for k in tq.redis.scan_iter(match=tq.keys.stats + ":*")]


def test_every_minute_hash_keeps_its_expiry_through_each_script(tq) -> None:
    ids = [tq.enqueue_with("t", (i,), strict=False, queue=q) for i, q in enumerate("abab")]
    jobs = tq.run(tq.broker.fetch(["a", "b"], 4, "tok", "w")).jobs
    assert {j.id for j in jobs} == set(ids)
    tq.run(tq.broker.ack([(j, encode_result(1)) for j in jobs[:3]]))
    tq.run(tq.broker.fail(jobs[3], "ValueError: x", "", 0))
    minutes = _minute_hashes(tq)
    assert minutes
    for key in minutes:
        assert 0 < tq.redis.pttl(key) <= 7_200_000, key
    tq.enqueue_with("t", (9,), strict=False)  # a later call into the same minute keeps it
    for key in _minute_hashes(tq):
        assert 0 < tq.redis.pttl(key) <= 7_200_000, key


def test_one_ack_for_jobs_of_several_queues_and_workers_clears_each_set(tq) -> None:
    for i in range(6):
        tq.enqueue_with("t", (i,), strict=False, queue="ab"[i % 2])
    first = tq.run(tq.broker.fetch(["a", "b"], 4, "t1", "w1")).jobs
    second = tq.run(tq.broker.fetch(["a", "b"], 4, "t2", "w2")).jobs
    assert len(first) + len(second) == 6
    # A stale lease (another token for a job of the batch) is refused; the same ack sent twice
    # in one call is a repeat, not a duplicate.
    stale = type(first[0])(**{**{f: getattr(first[0], f) for f in first[0].__slots__},
                              "token": "t-old"})  # fmt: skip
    acks = [(j, encode_result(0)) for j in first + second + [stale, first[1]]]
    assert tq.run(tq.broker.ack(acks)) == [True] * 6 + [False, True]
    for q in "ab":
        assert tq.redis.zcard(tq.keys.active(q)) == 0
    assert not tq.redis.exists(tq.keys.base + "held:w1", tq.keys.base + "held:w2")
    stats = {k.decode(): int(v) for k, v in tq.redis.hgetall(tq.keys.stats).items()}
    assert stats["a@t:succeeded"] + stats["b@t:succeeded"] == 6
    assert stats["a@t:started"] + stats["b@t:started"] == 6


def test_a_fetch_leases_its_whole_batch_in_the_active_and_held_sets(tq) -> None:
    ids = [tq.enqueue_with("t", (i,), strict=False) for i in range(5)]
    res = tq.run(tq.broker.fetch(["default"], 5, "tok", "w"))
    assert [j.id for j in res.jobs] == ids
    active = tq.redis.zrange(tq.keys.active("default"), 0, -1, withscores=True)
    assert sorted(i.decode() for i, _ in active) == sorted(ids)
    assert all(score > res.now_ms for _, score in active)
    assert {m.decode() for m in tq.redis.smembers(tq.keys.base + "held:w")} == set(ids)


def test_the_wake_list_stays_within_128_tokens(tq) -> None:
    lengths = set()
    for i in range(300):
        tq.enqueue_with("t", (i,), strict=False)
        lengths.add(tq.redis.llen(tq.keys.wake("default")))
    assert max(lengths) == 128
    assert 64 in lengths


def test_a_fetch_past_expired_jobs_leaves_a_token_for_those_left(tq) -> None:
    """Jobs left behind keep a wake token (the fetcher goes idle after any short fetch)."""
    for i in range(2):
        tq.enqueue_with("t", (i,), strict=False, expires=datetime(2000, 1, 1))

    # A datetime already past expires the job 1 ms after its enqueue, in Redis time (ms): wait
    # until Redis's clock is 2 ms on, or a fetch in the same millisecond still sees it live.
    def redis_ms() -> int:
        secs, usecs = tq.redis.time()
        return secs * 1000 + usecs // 1000

    t0 = redis_ms()
    wait_for(lambda: redis_ms() > t0 + 1, 5, "Redis time to move past the expiry")
    live = [tq.enqueue_with("t", (i,), strict=False) for i in range(3)]
    tq.redis.delete(tq.keys.wake("default"))
    res = tq.run(tq.broker.fetch(["default"], 2, "tok", "w"))
    assert [j.id for j in res.jobs] == live[:2]
    assert res.next_due_ms == -1  # a full batch: the caller fetches again, not idle
    assert tq.redis.llen(tq.keys.wake("default")) == 1
    assert tq.redis.llen(tq.keys.ready("default")) == 1


def test_a_short_fetch_says_when_the_next_scheduled_job_is_due(tq) -> None:
    """The caller of a short fetch waits idle next: it must know when to look again."""
    now_id = tq.enqueue_with("t", (1,), strict=False)
    tq.enqueue_with("t", (2,), strict=False, delay=60)
    res = tq.run(tq.broker.fetch(["default"], 5, "tok", "w"))
    assert [j.id for j in res.jobs] == [now_id]
    assert res.now_ms + 50_000 < res.next_due_ms <= res.now_ms + 60_000
