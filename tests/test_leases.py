"""fetch, ack, fail, extend, release and recover, driven script by script."""

from __future__ import annotations

import threading

import pytest

from taskqueue import TaskQueue
from taskqueue.backoff import backoff_ms, bounds_ms
from taskqueue.serialization import encode_result
from taskqueue.testing import wait_for

pytestmark = [pytest.mark.smoke, pytest.mark.cluster]
QUEUES = ["high_priority", "default", "low_priority"]


def put(client: TaskQueue, n: int = 1, **opts) -> list[str]:
    return [client.enqueue_with("t", (i,), strict=False, **opts) for i in range(n)]


def fetch(client: TaskQueue, n: int = 10, token: str = "tok", queues=QUEUES):
    return client.run(client.broker.fetch(queues, n, token, "test-worker"))


def test_fetch_leases_in_fifo_order_with_a_token(client: TaskQueue) -> None:
    ids = put(client, 3)
    res = fetch(client, 2)
    assert [j.id for j in res.jobs] == ids[:2]
    assert all(j.token == "tok" and j.attempts == 1 for j in res.jobs)
    st = client.status(ids[0])
    assert st.state == "active" and st.attempts == 1
    assert client.queue_lengths()["default"] == {
        "queued": 1,
        "scheduled": 0,
        "active": 2,
        "paused": 0,
    }


def test_fetch_takes_strict_priority_across_queues(client: TaskQueue) -> None:
    low = put(client, 2, queue="low_priority")
    default = put(client, 2, queue="default")
    high = put(client, 2, queue="high_priority")
    got = [j.id for j in fetch(client, 5).jobs]
    assert got == high + default + low[:1]


def test_fetch_skips_paused_queues_until_resumed(client: TaskQueue) -> None:
    put(client, 1, queue="high_priority")
    d = put(client, 1)
    assert client.pause("high_priority") is True
    assert [j.id for j in fetch(client).jobs] == d
    assert fetch(client).jobs == []
    assert client.resume("high_priority") is True
    assert len(fetch(client).jobs) == 1


def test_fetch_promotes_due_scheduled_jobs_and_reports_next_due(client: TaskQueue) -> None:
    soon = put(client, 1, delay=0.05)[0]
    later = put(client, 1, delay=60)[0]
    first = fetch(client)
    assert first.jobs == [] and first.next_due_ms > first.now_ms
    got = wait_for(lambda: fetch(client).jobs, what="delayed job to become due")
    assert [j.id for j in got] == [soon]
    assert client.status(later).state == "scheduled"


def test_concurrent_fetchers_get_each_job_exactly_once(client: TaskQueue) -> None:
    jobs = [client._job("t", (i,), strict=False) for i in range(5000)]
    ids = [job_id for job_id, _ in client.run(client.broker.enqueue(jobs))]
    seen: list[list[str]] = [[] for _ in range(8)]

    def fetcher(k: int) -> None:
        c = TaskQueue(client.url)
        while True:
            res = c.run(c.broker.fetch(["default"], 7, f"tok{k}", f"w{k}"))
            if not res.jobs:
                return
            seen[k] += [j.id for j in res.jobs]

    threads = [threading.Thread(target=fetcher, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [i for s in seen for i in s]
    assert len(flat) == 5000 and set(flat) == set(ids)
    assert sum(1 for s in seen if s) > 1, "all jobs went to one fetcher: no concurrency tested"


def test_ack_requires_the_current_lease_token(client: TaskQueue) -> None:
    put(client, 1)
    job = fetch(client, 1, token="right").jobs[0]
    stale = type(job)(**{**{f: getattr(job, f) for f in job.__slots__}, "token": "wrong"})
    assert client.run(client.broker.ack([(stale, encode_result(1))])) == [False]
    assert client.status(job.id).state == "active"
    assert client.run(client.broker.ack([(job, encode_result(42))])) == [True]
    assert client.result(job.id, timeout=1) == 42
    # The same ack again (its first reply was lost on the way): acknowledged, and nothing
    # changes: the stored result stays, no duplicate is counted.
    assert client.run(client.broker.ack([(job, encode_result(43))])) == [True]
    assert client.result(job.id, timeout=1) == 42
    assert int(client.redis.hget(client.keys.stats, "default:duplicates")) == 1
    assert client.run(client.broker.ack([(stale, encode_result(44))])) == [False]
    assert int(client.redis.hget(client.keys.stats, "default:duplicates")) == 2


def test_a_fail_sent_again_returns_what_the_first_made_of_it(client: TaskQueue) -> None:
    """A fail whose reply was lost is sent again with the same token: it changes nothing and
    answers the first call's outcome, not "lost" (which would log a lease that was not lost)."""
    retried = client.enqueue_with("t", (1,), strict=False, max_retries=1)
    job = fetch(client, 1, token="first").jobs[0]
    assert client.run(client.broker.fail(job, "E: 1", "", 60_000)) == "scheduled"
    assert client.run(client.broker.fail(job, "E: 1", "", 60_000)) == "scheduled"
    st = client.status(retried)
    assert (st.state, st.failures, len(st.history)) == ("scheduled", 1, 1)
    put(client, 1)
    doomed = fetch(client, 1, token="second").jobs[0]
    assert client.run(client.broker.fail(doomed, "Reject: bad", "", 0, retry=False)) == "dead"
    assert client.run(client.broker.fail(doomed, "Reject: bad", "", 0, retry=False)) == "dead"
    assert client.status(doomed.id).failures == 1
    doomed.token = "other"
    assert client.run(client.broker.fail(doomed, "E", "", 0)) == "lost"


def test_fail_retries_with_backoff_within_jitter_bounds(client: TaskQueue) -> None:
    put(client, 1)
    job = fetch(client).jobs[0]
    low, high = bounds_ms(1, base=10.0, cap=600.0)
    delays = [backoff_ms(n, base=10.0, cap=600.0) for n in (1,) * 200]
    assert all(low <= d <= high for d in delays), (min(delays), max(delays), low, high)
    assert len(set(delays)) > 1, "the delay is jittered, not a constant"
    for failures in range(2, 12):  # the ceiling doubles up to the cap, the floor is half of it
        lo, hi = bounds_ms(failures, base=10.0, cap=600.0)
        assert (lo, hi) == (
            min(600_000, 10_000 * 2 ** (failures - 1)) // 2,
            min(600_000, 10_000 * 2 ** (failures - 1)),
        )
        assert all(lo <= backoff_ms(failures, 10.0, 600.0) <= hi for _ in range(50))
    delay = delays[0]
    assert client.run(client.broker.fail(job, "ValueError: x", "tb", delay)) == "scheduled"
    st = client.redis.hmget(client.keys.job(job.id), "state", "due_ms", "finished_ms")
    score = client.redis.zscore(client.keys.scheduled("default"), job.id)
    now_ms = fetch(client).now_ms
    assert st[0] == b"scheduled" and int(st[1]) == int(score)
    assert 0 < score - now_ms <= delay
    assert client.status(job.id).failures == 1


def test_fail_goes_to_dead_letter_after_max_retries_with_history(client: TaskQueue) -> None:
    job_id = client.enqueue_with("t", (1,), strict=False, max_retries=2)
    for attempt in range(3):
        job = wait_for(lambda: fetch(client).jobs, what="retry to become due")[0]
        assert job.attempts == attempt + 1
        state = client.run(client.broker.fail(job, f"ValueError: try {attempt}", "Traceback...", 0))
    assert state == "dead"
    st = client.status(job_id)
    assert (st.state, st.failures, st.error) == ("dead", 3, "ValueError: try 2")
    assert st.traceback == "Traceback..."
    assert [h["error"] for h in st.history] == [f"ValueError: try {i}" for i in range(3)]
    assert [d.id for d in client.dead_letter()] == [job_id]


def test_permanent_failure_skips_retries(client: TaskQueue) -> None:
    put(client, 1)
    job = fetch(client).jobs[0]
    assert client.run(client.broker.fail(job, "Reject: bad", "", 0, retry=False)) == "dead"


def test_fail_with_a_stale_token_changes_nothing(client: TaskQueue) -> None:
    put(client, 1)
    job = fetch(client, token="a").jobs[0]
    job.token = "b"
    assert client.run(client.broker.fail(job, "E", "", 0)) == "lost"
    assert client.status(job.id).state == "active"


def test_dead_letter_retry_and_delete(client: TaskQueue) -> None:
    ids = put(client, 3, max_retries=0)
    for job in fetch(client).jobs:
        client.run(client.broker.fail(job, "E: x", "", 0))
    assert len(client.dead_letter()) == 3
    assert client.retry_dead(ids[0]) == 1
    st = client.status(ids[0])
    assert (st.state, st.failures) == ("queued", 0)
    assert client.delete_dead(ids[1]) == 1
    assert client.redis.exists(client.keys.job(ids[1])) == 0
    assert client.retry_dead() == 1
    assert client.queue_lengths()["default"]["queued"] == 2 and client.dead_letter() == []


def test_extend_renews_held_leases_and_reports_lost_ones(client: TaskQueue) -> None:
    put(client, 2)
    a, b = fetch(client, token="t1").jobs
    before = client.redis.zscore(client.keys.active("default"), a.id)
    lost, cancelled = client.run(
        client.broker.extend([(a.id, "default", "t1"), (b.id, "default", "other")])
    )
    assert (lost, cancelled) == ([b.id], [])
    assert client.redis.zscore(client.keys.active("default"), a.id) >= before


def test_release_returns_jobs_to_the_head_without_spending_an_attempt(client: TaskQueue) -> None:
    ids = put(client, 3)
    jobs = fetch(client, 2, token="t").jobs
    n = client.run(client.broker.release([(j.id, j.queue, j.token) for j in jobs]))
    assert n == 2
    ready = [x.decode() for x in client.redis.lrange(client.keys.ready("default"), 0, -1)]
    assert ready == ids
    st = client.status(ids[0])
    assert (st.state, st.attempts, st.failures, st.stalls) == ("queued", 0, 0, 0)


def test_stalled_release_counts_stalls_then_dead_letters(redis_url: str) -> None:
    c = TaskQueue(redis_url, broker_options={"max_stalls": 1})
    job_id = c.enqueue_with("t", (1,), strict=False)
    for expected in ("queued", "dead"):
        job = c.run(c.broker.fetch(["default"], 1, "t", "w")).jobs[0]
        c.run(c.broker.release([(job.id, "default", "t")], stalled=True, reason="worker 7 died"))
        assert c.status(job_id).state == expected
    st = c.status(job_id)
    assert st.stalls == 2 and "worker 7 died" in st.error


def test_recover_requeues_expired_leases(redis_url: str) -> None:
    c = TaskQueue(redis_url, broker_options={"lease_ms": 50, "max_stalls": 1})
    ids = [c.enqueue_with("t", (i,), strict=False) for i in range(3)]
    c.run(c.broker.fetch(["default"], 3, "t", "w"))
    got = wait_for(lambda: c.run(c.broker.recover(["default"]))["requeued"], what="lease expiry")
    assert got == 3
    assert {c.status(i).state for i in ids} == {"queued"}
    assert {c.status(i).stalls for i in ids} == {1}
    for token in ("t2", "t3", "t4"):  # suspects (stalled once) come one per batch
        assert len(c.run(c.broker.fetch(["default"], 3, token, "w")).jobs) == 1
    dead = 0

    def all_dead() -> bool:
        nonlocal dead
        dead += c.run(c.broker.recover(["default"]))["dead"]
        return dead == 3

    wait_for(all_dead, what="second expiry")
    assert {c.status(i).state for i in ids} == {"dead"}
    assert "lease expired" in c.status(ids[0]).error


def test_release_worker_returns_every_job_a_dead_worker_held(client: TaskQueue) -> None:
    """A worker killed right after fetching, before its master heard of the jobs: the master
    still gives them all back at once from the worker's held set."""
    ids = put(client, 4)
    jobs = client.run(client.broker.fetch(["default"], 3, "w1:1", "w1")).jobs
    client.run(client.broker.ack([(jobs[0], encode_result(1))]))  # finished: not held any more
    other = client.run(client.broker.fetch(["default"], 1, "w2:1", "w2")).jobs[0]
    n = client.run(client.broker.release_worker("w1", stalled=True, reason="worker died"))
    assert n == 2
    assert [client.status(j.id).state for j in jobs] == ["succeeded", "queued", "queued"]
    assert [client.status(j.id).stalls for j in jobs[1:]] == [1, 1]
    assert client.status(other.id).state == "active", "another worker's job is left alone"
    assert client.redis.exists(client.keys.held("w1")) == 0
    assert client.run(client.broker.release_worker("w1")) == 0
    assert set(ids) == {j.id for j in jobs} | {other.id}


def test_clean_exit_release_worker_spends_no_attempt(client: TaskQueue) -> None:
    put(client, 2)
    client.run(client.broker.fetch(["default"], 2, "w1:1", "w1"))
    assert client.run(client.broker.release_worker("w1", stalled=False)) == 2
    ready = client.redis.lrange(client.keys.ready("default"), 0, -1)
    states = [client.status(i.decode()) for i in ready]
    assert [(s.state, s.attempts, s.stalls) for s in states] == [("queued", 0, 0)] * 2


def test_every_exit_from_active_leaves_the_held_set(redis_url: str) -> None:
    c = TaskQueue(redis_url, broker_options={"lease_ms": 50})
    for _ in range(4):
        c.enqueue_with("t", (1,), strict=False)
    a, b, d, e = c.run(c.broker.fetch(["default"], 4, "w1:1", "w1")).jobs
    c.run(c.broker.ack([(a, encode_result(1))]))
    c.run(c.broker.fail(b, "E: x", "", 10_000))
    c.run(c.broker.release([(d.id, d.queue, d.token)]))
    wait_for(lambda: c.run(c.broker.recover(["default"]))["requeued"] == 1, what="e's lease expiry")
    assert c.redis.smembers(c.keys.held("w1")) == set()
    # A dead worker's sweep finds nothing of these jobs any more.
    assert c.run(c.broker.release_worker("w1")) == 0
    assert c.status(e.id).state == "queued" and c.status(d.id).state == "queued"
