"""Paged job lists (taskqueue.control.joblist) on a real Redis with real jobs."""

from __future__ import annotations

import pytest

from taskqueue import task
from taskqueue.control.joblist import job_page
from taskqueue.worker import Worker


def test_pages_of_queued_scheduled_and_dead_jobs(client, reg) -> None:
    @task(name="ok", registry=reg)
    def ok(i: int) -> int:
        return i

    @task(name="boom", registry=reg, max_retries=0, queue="low_priority")
    def boom() -> None:
        raise ValueError("kaput")

    dead_ids = [client.enqueue(boom) for _ in range(3)]
    Worker(client, registry=reg, queues=["low_priority"]).run(burst=True)
    queued = [client.enqueue(ok, i) for i in range(25)]
    later = client.enqueue_with(ok, (99,), delay=600)
    r, k = client.redis, client.keys

    first = job_page(r, k, "queued", "default", 0, 10)
    second = job_page(r, k, "queued", "default", 20, 10)
    assert first["total"] == 25 and [j["id"] for j in first["jobs"]] == queued[:10]
    assert [j["id"] for j in second["jobs"]] == queued[20:]
    assert first["jobs"][0]["task"] == "ok" and first["jobs"][0]["state"] == "queued"

    sched = job_page(r, k, "scheduled", "default")
    assert sched["total"] == 1 and sched["jobs"][0]["id"] == later
    assert sched["jobs"][0]["score_ms"] > sched["jobs"][0]["enqueued_ms"]

    dead = job_page(r, k, "dead", None, 0, 2)
    assert dead["total"] == 3 and len(dead["jobs"]) == 2
    assert {j["id"] for j in dead["jobs"]} < set(dead_ids)
    job = dead["jobs"][0]
    assert job["error"] == "ValueError: kaput" and "raise ValueError" in job["traceback"]
    assert job["attempts"] == 1 and job["queue"] == "low_priority"

    assert job_page(r, k, "dead", "low_priority", 2, 5)["total"] == 3
    assert len(job_page(r, k, "dead", "low_priority", 2, 5)["jobs"]) == 1
    assert job_page(r, k, "dead", "default")["total"] == 0
    assert job_page(r, k, "active", "default")["jobs"] == []


@pytest.mark.parametrize(
    "state,queue,offset,limit,word",
    [
        ("done", "q", 0, 10, "state"),
        ("queued", None, 0, 10, "queue"),
        ("queued", "q", -1, 10, "offset"),
        ("queued", "q", 0, 1000, "limit"),
    ],  # fmt: skip
)
def test_bad_arguments_are_named(client, state, queue, offset, limit, word) -> None:
    with pytest.raises(ValueError, match=word):
        job_page(client.redis, client.keys, state, queue, offset, limit)
