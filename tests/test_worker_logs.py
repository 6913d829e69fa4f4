"""A full worker run logs lifecycle records as JSON, and never writes the Redis password."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from taskqueue import TaskQueue, logs, task
from taskqueue.logs import configure_logging
from taskqueue.registry import Registry
from taskqueue.testing import wait_for
from taskqueue.worker import Worker

SECRET = "s3cr3t-Pa55"


@pytest.fixture
def json_log():
    stream = io.StringIO()
    handler = configure_logging("DEBUG", "json", stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)


@pytest.mark.slow
def test_full_worker_run_logs_lifecycle_json_and_never_the_password(redis_factory, json_log):
    server = redis_factory(aof=True)
    server.client().config_set("requirepass", SECRET)
    url = f"redis://default:{SECRET}@127.0.0.1:{server.port}/0"
    reg = Registry()

    @task(name="fine", registry=reg)
    def fine(x):
        return x

    @task(name="broken", registry=reg, max_retries=0)
    def broken():
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise RuntimeError(f"outer, while talking to {url}") from exc

    client = TaskQueue(url, registry=reg)
    ok, bad = client.enqueue(fine, 1), client.enqueue(broken)
    worker = Worker(client, registry=reg)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    wait_for(lambda: client.status(bad).state == "dead" and client.status(ok).state == "succeeded")
    server.kill()  # an outage: its messages must not leak the URL either
    server.start()
    server.client().config_set("requirepass", SECRET)
    wait_for(lambda: client.redis.ping(), what="reconnect")
    worker.stop()
    thread.join(timeout=30)

    text = json_log.getvalue()
    assert SECRET not in text
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    events = {(r.get("event"), r.get("task_id")): r for r in records if r.get("event")}
    for key in (("started", ok), ("succeeded", ok), ("started", bad), ("dead", bad)):
        assert key in events, f"missing lifecycle record {key}"
    done = events[("succeeded", ok)]
    assert done["level"] == "INFO" and done["task_name"] == "fine" and done["queue"] == "default"
    assert done["attempt"] == 1 and done["worker"] == worker.name and done["duration_ms"] >= 0
    dead = events[("dead", bad)]
    assert dead["level"] == "ERROR"
    assert [c["type"] for c in dead["error_chain"]] == ["RuntimeError", "KeyError"]


@pytest.mark.parametrize("enabled", [True, False])
def test_error_chain_switch(redis_url, json_log, enabled):
    """logging.enable_error_chain_analysis adds error_chain to failure records, or leaves it out;
    every failure record says whether the job will be retried and when, or is dead."""
    from taskqueue.config import TaskQueueConfig

    env = {"TASKQUEUE_LOGGING__ENABLE_ERROR_CHAIN_ANALYSIS": str(enabled).lower()}
    handler = logs.configure_logging_from_config(
        TaskQueueConfig.load(env=env | {"LOG_FORMAT": "json"}), json_log
    )
    reg = Registry()

    @task(name="chained", registry=reg, max_retries=1, retry_backoff=0.01)
    def chained():
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise RuntimeError("outer") from exc

    client = TaskQueue(redis_url, registry=reg)
    job = client.enqueue(chained)
    worker = Worker(client, registry=reg)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: client.status(job).state == "dead", 30, "the job dead")
    finally:
        worker.stop()
        thread.join(30)
        logs.set_error_chain_enabled(True)
        logging.getLogger().removeHandler(handler)
    records = [json.loads(x) for x in json_log.getvalue().splitlines() if x.strip()]
    fails = {r["event"]: r for r in records if r.get("task_id") == job and r.get("event")}
    retrying, dead = fails["retrying"], fails["dead"]
    assert (retrying["will_retry"], retrying["dead"]) == (True, False)
    assert retrying["retry_in_ms"] >= 0
    assert (dead["will_retry"], dead["dead"]) == (False, True) and "retry_in_ms" not in dead
    assert "duration_ms" not in fails["started"]
    for rec in (retrying, dead):
        if enabled:
            assert [c["type"] for c in rec["error_chain"]] == ["RuntimeError", "KeyError"]
        else:
            assert "error_chain" not in rec
