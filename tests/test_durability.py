"""Redis killed and restarted (AOF, fsync always): every job is still accounted for, and a worker
reconnects and finishes the work."""

from __future__ import annotations

import asyncio
import threading

import pytest

from taskqueue import TaskQueue, task
from taskqueue.registry import Registry
from taskqueue.testing import assert_conserved, wait_for
from taskqueue.testing.ledger import ENV as LEDGER_ENV
from taskqueue.testing.ledger import Ledger, check_ledger, recorded
from taskqueue.worker import Worker


@pytest.mark.slow
def test_redis_sigkill_and_restart_with_aof_loses_no_job(
    redis_factory, caplog, tmp_path, monkeypatch
) -> None:
    caplog.set_level("WARNING", logger="taskqueue.worker")
    server = redis_factory(aof=True)
    reg = Registry()
    ledger = Ledger(tmp_path / "ledger.jsonl")
    monkeypatch.setenv(LEDGER_ENV, str(ledger.path))  # the worker runs in this process

    @task(name="io", registry=reg)
    @recorded
    async def io(i):
        await asyncio.sleep(0.01)
        return i

    client = TaskQueue(server.url, registry=reg)
    ids = client.enqueue_many([(io, (i,)) for i in range(5000)])
    worker = Worker(client, registry=reg, max_concurrent_tasks=20)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    wait_for(lambda: worker.processed > 300, what="worker to get going")
    ledger.fault("redis_sigkill")
    server.kill()
    server.start()
    left = client.queue_lengths()["default"]["queued"]
    assert left > 0, "the kill should happen mid-run"
    # Everything acknowledged before the kill survived; the worker reconnects on its own.
    wait_for(
        lambda: (
            client.queue_lengths()["default"]["queued"] == 0
            and client.queue_lengths()["default"]["active"] == 0
        ),
        timeout=60,
        what="the queue to drain after the restart",
    )
    worker.stop()
    thread.join(timeout=60)
    # The wait above saw no job queued or leased, so every job must have finished, and finished
    # once: a job whose ack was cut by the kill is re-acknowledged after the reconnect, not
    # left for a lease expiry.
    places = assert_conserved(client.redis, ids)
    assert places["succeeded"] == 5000, dict(places)
    report = check_ledger(client.redis, ids, ledger)  # once each, or excused by the kill
    # The worker recovers expired leases itself after 30 s: a dropped ack would show as a
    # second run of its job, which the kill would excuse. So: no second run at all.
    assert report.runs == len(ids), f"{report.runs - len(ids)} job(s) ran twice"
    outages = [r for r in caplog.records if r.getMessage().startswith("lost Redis")]
    assert len(outages) == 1, "an outage is logged once, not once per reconnect attempt"


@pytest.mark.smoke
def test_enqueued_jobs_survive_a_restart(redis_factory) -> None:
    server = redis_factory(aof=True)
    client = TaskQueue(server.url)
    ids = [client.enqueue_with("t", (i,), strict=False) for i in range(100)]
    delayed = client.enqueue_with("t", (1,), strict=False, delay=3600)
    server.kill()
    server.start()
    assert client.queue_lengths()["default"]["queued"] == 100
    assert client.status(delayed).state == "scheduled"
    assert_conserved(client.redis, [*ids, delayed])
