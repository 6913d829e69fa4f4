"""Cancelling a waiting job is O(1): its id stays in the ready list as a tombstone (counted per
queue), and fetch and purge drop it unrun when they pop it. Nothing that counts waiting jobs may
count a tombstone, and no cancelled job may run."""

from __future__ import annotations

import threading

import pytest

from taskqueue import task
from taskqueue.broker import SKIP_BATCH
from taskqueue.control.joblist import job_page
from taskqueue.control.overview import queue_overview
from taskqueue.errors import TaskFailed
from taskqueue.metrics import read_snapshot
from taskqueue.testing import assert_conserved, tombstone_problems
from taskqueue.worker import Worker


def waiting_everywhere(client) -> dict[str, int]:
    """The default queue's waiting count as each reader reports it."""
    r, k = client.redis, client.keys
    (row,) = [row for row in queue_overview(r, k) if row["queue"] == "default"]
    return {
        "client": client.queue_lengths()["default"]["queued"],
        "overview (tqctl)": row["queued"],
        "metrics (HTTP API, Prometheus, autoscaler)": read_snapshot(r, k).queues["default"].queued,
        "job list": job_page(r, k, "queued", "default", 0, 200)["total"],
    }


@pytest.mark.cluster
def test_a_cancelled_waiting_job_never_runs_is_cancelled_and_not_counted(client, reg) -> None:
    ran: list[int] = []
    lock = threading.Lock()

    @task(name="record", registry=reg)
    def record(i: int) -> int:
        with lock:
            ran.append(i)
        return i

    ids = client.enqueue_many([(record, (i,)) for i in range(10)])
    cancelled = {0, 3, 9}  # the head, the middle and the tail of the list
    assert all(client.cancel(ids[i]) for i in cancelled)
    for i in cancelled:
        assert client.status(ids[i]).state == "cancelled"
        with pytest.raises(TaskFailed, match="cancelled"):
            client.result(ids[i], timeout=1)
        assert client.cancel(ids[i]) is False, "a cancelled job cannot be cancelled again"
    assert client.redis.llen(client.keys.ready("default")) == 10, "the ids stay: O(1) cancel"
    assert set(waiting_everywhere(client).values()) == {7}, waiting_everywhere(client)
    page = job_page(client.redis, client.keys, "queued", "default", 0, 200)["jobs"]
    assert [j["id"] for j in page] == [ids[i] for i in range(10) if i not in cancelled]
    assert assert_conserved(client.redis, ids, client.keys) == {"queued": 7, "cancelled": 3}

    Worker(client, registry=reg, queues=["default"]).run(burst=True)

    kept = [i for i in range(10) if i not in cancelled]
    assert sorted(ran) == kept, "a cancelled job ran"
    assert [client.result(ids[i], timeout=1) for i in kept] == kept
    assert {client.status(ids[i]).state for i in cancelled} == {"cancelled"}
    assert set(waiting_everywhere(client).values()) == {0}
    assert client.redis.hgetall(client.keys.tombs) == {}, "every tombstone dropped and uncounted"
    assert assert_conserved(client.redis, ids, client.keys) == {"succeeded": 7, "cancelled": 3}


def test_fetch_crosses_a_long_run_of_tombstones_in_bounded_steps(client) -> None:
    ids = [client.enqueue_with("t", (i,), strict=False) for i in range(2 * SKIP_BATCH + 5)]
    for job_id in ids[: 2 * SKIP_BATCH]:
        assert client.cancel(job_id)
    k = client.keys
    assert client.queue_lengths()["default"]["queued"] == 5
    steps = []
    while not (jobs := client.run(client.broker.fetch(["default"], 5, "tok", "w")).jobs):
        # A fetch that dropped its bound of tombstones returns short, and leaves a wake token
        # so that an idle worker comes straight back for the jobs behind them.
        steps.append(int(client.redis.hget(k.tombs, "default") or 0))
        assert client.redis.llen(k.wake("default")) >= 1
        assert len(steps) <= 2, "each fetch drops at least SKIP_BATCH tombstones"
    assert steps == [SKIP_BATCH, 0]
    assert [j.id for j in jobs] == ids[2 * SKIP_BATCH :]
    assert client.queue_lengths()["default"]["queued"] == 0


def test_purge_drops_tombstones_without_counting_them_purged(client) -> None:
    ids = [client.enqueue_with("t", (i,), strict=False) for i in range(250)]
    for job_id in ids[::2]:
        assert client.cancel(job_id)
    assert client.queue_lengths()["default"]["queued"] == 125
    assert client.purge("default") == 125
    assert client.redis.llen(client.keys.ready("default")) == 0
    assert client.redis.hgetall(client.keys.tombs) == {}
    assert {client.status(i).error for i in ids[1::2]} == {"purged"}
    assert {client.status(i).error for i in ids[::2]} == {None}, "a cancel is not a purge"
    assert_conserved(client.redis, ids, client.keys)


def test_the_checker_catches_a_miscounted_tombstone(client) -> None:
    ids = [client.enqueue_with("t", (i,), strict=False) for i in range(3)]
    assert client.cancel(ids[1])
    assert tombstone_problems(client.redis, client.keys) == []
    client.redis.hset(client.keys.tombs, "default", 2)
    assert tombstone_problems(client.redis, client.keys) == [
        "queue default: tombstone count 2, but its ready list holds 1 cancelled id(s) and 0 "
        "without a record"
    ]
    with pytest.raises(AssertionError, match="tombstones miscounted"):
        assert_conserved(client.redis, ids, client.keys)
