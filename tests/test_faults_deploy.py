"""Deploys: HUP brings up workers running the changed task code, and a job for a task added by
the deploy is retried (not dead-lettered) while some live worker registers it."""

from __future__ import annotations

import json
import signal
import textwrap
import time

import pytest

from taskqueue import registered
from taskqueue.testing import wait_for
from taskqueue.testing.ledger import check_ledger

V1 = """
from taskqueue import task
from taskqueue.testing.ledger import recorded

@task(name="d.version")
@recorded
def version():
    return 1
"""
V2 = V1.replace("return 1", "return 2  # the deployed code") + textwrap.dedent("""
    @task(name="d.new")
    @recorded
    def new(i):
        return f"new {i}"
""")


def live(tq) -> dict:
    return registered.live_entries(tq.redis.hgetall(tq.keys.registered))[0]


@pytest.mark.slow
def test_hup_runs_changed_code_and_new_tasks_survive_the_roll(redis_url, tq, masters, ledger,
                                                              tmp_path):  # fmt: skip
    mod = f"deploy_tasks_{int(time.time() * 1000)}"
    (tmp_path / f"{mod}.py").write_text(V1)
    m = masters(redis_url, "-w", "2", imports=mod,
                env={"PYTHONPATH": str(tmp_path), **ledger.env()})  # fmt: skip
    old = set(m.wait_workers(2))
    v1 = tq.enqueue_with("d.version", strict=False)
    assert tq.result(v1, timeout=20)["value"] == 1
    wait_for(lambda: any("d.version" in e["tasks"] for e in live(tq).values()), 10, "published")
    (tmp_path / f"{mod}.py").write_text(V2)
    for pid in old:  # recorded before it is sent: the roll retires every old worker
        ledger.fault("SIGHUP to the master (deploy)", pid=pid)
    m.send(signal.SIGHUP)
    wait_for(lambda: any("d.new" in e["tasks"] for e in live(tq).values()), 20,
             "the master publishes the new task")  # fmt: skip
    # Old workers are still up: some of these land on them, which do not know the task yet.
    ids = [tq.enqueue_with("d.new", (i,), strict=False) for i in range(20)]
    m.wait_log("reload done", timeout=30)
    m.wait_workers(2, exclude=old)
    assert [tq.result(i, timeout=30)["value"] for i in ids] == [f"new {i}" for i in range(20)]
    v2 = tq.enqueue_with("d.version", strict=False)
    assert tq.result(v2, timeout=20)["value"] == 2
    assert m.stop() == 0
    # An old worker refuses a task it does not know before any code runs: one run per job.
    report = check_ledger(tq.redis, [v1, *ids, v2], ledger, tq.keys)
    assert report.runs == 22 and not report.excused


def test_unknown_task_is_retried_while_a_live_worker_registers_it(client, worker_factory) -> None:
    keys = client.keys
    entry = registered.entry(["default"], [{"name": "deployed.later"}])
    client.redis.hset(keys.registered, "other-host:1", entry)
    job = client.enqueue_with("deployed.later", max_retries=3, strict=False)
    with worker_factory():
        wait_for(lambda: client.status(job).failures >= 1, 20, "a retry")
    st = client.status(job)
    assert st.state in ("scheduled", "queued"), st
    assert "other-host:1 registers it" in st.error


def test_unknown_task_nobody_registers_is_dead_at_once(client, worker_factory) -> None:
    expired = json.dumps({"queues": ["default"], "tasks": ["gone.task"], "expires_ms": 1})
    client.redis.hset(client.keys.registered, "dead-host:1", expired)
    job = client.enqueue_with("gone.task", max_retries=3, strict=False)
    with worker_factory():
        wait_for(lambda: client.status(job).state == "dead", 20, "the dead letter")
    st = client.status(job)
    assert st.failures == 1 and "nor in any live worker" in st.error


def test_a_standalone_worker_publishes_its_tasks_and_removes_them(client, worker_factory, reg):
    from taskqueue import task

    @task(name="mine", registry=reg)
    def mine():
        return 1

    with worker_factory(queues=["default"]) as w:
        wait_for(lambda: w.name in live(client), 10, "published")
        assert live(client)[w.name]["tasks"] == ["mine"]
        assert live(client)[w.name]["queues"] == ["default"]
    assert w.name not in live(client)
