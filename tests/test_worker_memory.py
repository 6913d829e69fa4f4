"""An idle worker keeps little private memory (issue 14, step 5): its sync threads start on
demand and exit once idle, a worker process never imports the web stack, and it reuses the
master's lookup of redis-py's version instead of parsing package metadata for each connection."""

from __future__ import annotations

import importlib.metadata
import random
import re
import threading
import time

import pytest
import redis.utils

from taskqueue import task
from taskqueue.connection import RedisSettings, connect, pin_redis_version
from taskqueue.testing import wait_for
from taskqueue.worker import processors

#: Top-level packages of the HTTP API, the dashboard and optional config formats.
WEB_STACK = ("starlette", "uvicorn", "prometheus_client", "yaml", "jinja2", "anyio")


def sync_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tq-sync-")]


def test_sync_threads_start_on_demand_up_to_one_per_slot_and_exit_when_idle(
    client, reg, worker_factory
) -> None:
    gate = threading.Event()
    started: list[int] = []

    @task(name="held", registry=reg)
    def held(i):
        started.append(i)
        gate.wait(30)
        return threading.current_thread().name

    assert not sync_threads()
    with worker_factory(max_concurrent_tasks=4):
        ids = client.enqueue_many([(held, (i,)) for i in range(10)])
        wait_for(lambda: len(started) == 4, 10, "four jobs to start")
        assert len(sync_threads()) == 4, "one thread per busy slot, no more"
        gate.set()
        names = {client.result(i, timeout=10) for i in ids}
        assert all(n.startswith("tq-sync-") for n in names), names
        wait_for(lambda: not sync_threads(), 10, "idle sync threads to exit")
        again = client.enqueue(held, 11)
        assert client.result(again, timeout=10).startswith("tq-sync-")


def test_jobs_arriving_as_threads_retire_all_run(client, reg, worker_factory, monkeypatch) -> None:
    """Threads exit after a few ms idle here, so jobs keep arriving while threads are leaving."""
    monkeypatch.setattr(processors, "IDLE_EXIT", 0.003)

    @task(name="quick", registry=reg)
    def quick(i):
        return i

    rnd = random.Random(14)
    with worker_factory(max_concurrent_tasks=3):
        ids = []
        for i in range(150):
            ids.append(client.enqueue(quick, i))
            time.sleep(rnd.choice((0, 0, 0.001, 0.003, 0.004)))
        assert [client.result(j, timeout=10) for j in ids] == list(range(150))


@pytest.mark.slow
def test_a_worker_process_imports_no_web_stack(redis_url, masters) -> None:
    m = masters(redis_url, "-w", "1", env={"PYTHONPROFILEIMPORTTIME": "1"})
    m.wait_workers(1)
    from taskqueue import TaskQueue

    tq = TaskQueue(redis_url)
    jobs = [tq.enqueue_with(name, (1,), strict=False) for name in ("m.noop", "m.anoop")]
    wait_for(lambda: all(tq.status(j).state == "succeeded" for j in jobs), 20, "both jobs")
    tq.close()
    assert m.stop() == 0
    imported = set(re.findall(r"^import time:.*\|\s+([\w.]+)\s*$", m.log(), re.M))
    assert "taskqueue.worker.processors" in imported  # the import log was written
    assert not {i for i in imported if i.split(".")[0] in WEB_STACK}


def test_a_pinned_redis_version_is_looked_up_once_and_still_sent(redis_url, monkeypatch) -> None:
    pin_redis_version()
    pin_redis_version()  # idempotent
    assert redis.utils.get_lib_version._taskqueue_pinned  # type: ignore[attr-defined]
    installed = importlib.metadata.version("redis")

    def no_more_lookups(name: str) -> str:
        raise AssertionError(f"metadata of {name!r} read again")

    monkeypatch.setattr(redis.utils.metadata, "version", no_more_lookups)
    client = connect(RedisSettings(redis_url), name="pinned")
    assert client.ping()
    conn = client.connection_pool.get_connection()
    try:
        assert conn.driver_info.lib_version == installed
    finally:
        client.connection_pool.release(conn)
        client.close()


@pytest.mark.slow
def test_workers_reuse_the_masters_redis_version_lookup(redis_url, tq, masters) -> None:
    from tests.tasks_for_master import redis_version

    m = masters(redis_url, "-w", "1")
    m.wait_workers(1)
    job = tq.enqueue(redis_version)
    assert tq.result(job, timeout=20) == [True, importlib.metadata.version("redis")]
    assert m.stop() == 0
