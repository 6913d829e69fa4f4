"""Recycling and limits: task count, memory (USS), runaway sync tasks, workers that cannot boot.
Tests that run jobs run ledger-recorded tasks and end with ``check_ledger``: a recycle is
graceful (no run excused), a runaway task's replaced worker is a fault the test provokes."""

from __future__ import annotations

import time

import pytest

from taskqueue.testing import assert_conserved, wait_for
from taskqueue.testing.ledger import check_ledger
from taskqueue.testing.ledger_tasks import noop
from tests.tasks_faults import leak, pid, spin

pytestmark = pytest.mark.slow
#: Recorded tasks: ``ledger.*`` and ``faults.*``.
TASKS = "tests.tasks_faults"


@pytest.mark.cluster
def test_worker_recycled_after_max_tasks(redis_url, tq, masters, ledger):
    m = masters(redis_url, "-w", "1", "--max-tasks-per-child", "50", env=ledger.env(),
                imports=TASKS)  # fmt: skip
    first = m.wait_workers(1)
    ids = tq.enqueue_many([(noop, (i,)) for i in range(120)])
    wait_for(lambda: all(tq.status(i).state == "succeeded" for i in ids), 30, "jobs done")
    m.wait_log("max_tasks_per_child", count=2)
    m.wait_workers(1, exclude=set(first))
    assert assert_conserved(tq.redis, ids) == {"succeeded": 120}
    assert m.stop() == 0
    # A recycle is graceful (TERM, in-flight jobs finish, unstarted ones go back): no fault to
    # record, and no job may run twice.
    report = check_ledger(tq.redis, ids, ledger, tq.keys)
    assert report.runs == 120 and not report.excused


@pytest.mark.cluster
def test_worker_recycled_at_its_memory_limit(redis_url, tq, masters, ledger):
    m = masters(redis_url, "-w", "1", "--max-memory-per-child", "80", env=ledger.env(),
                imports=TASKS)  # fmt: skip
    first = set(m.wait_workers(1))
    ids = [tq.enqueue(leak, 20) for _ in range(5)]
    wait_for(lambda: all(tq.status(i).state == "succeeded" for i in ids), 30, "jobs done")
    m.wait_log("max_memory_per_child")
    m.wait_workers(1, exclude=first)
    after = tq.enqueue(pid)
    assert tq.result(after, timeout=15)["value"] not in first
    assert m.stop() == 0
    report = check_ledger(tq.redis, [*ids, after], ledger, tq.keys)
    assert report.runs == 6 and not report.excused  # the recycle is graceful


def test_spinning_sync_task_is_killed_retried_then_dead(redis_url, tq, masters, ledger):
    m = masters(redis_url, "-w", "1", "--graceful-timeout", "2", env=ledger.env(), imports=TASKS)
    first = set(m.wait_workers(1))
    (victim,) = first
    # Each attempt is failed at its time limit, but its thread spins on: the run never finishes
    # in the ledger, so the retry follows a run that never ended. The test provokes that: it is
    # recorded as a fault of the first worker, from the enqueue until that worker is replaced.
    with ledger.fault_window("runaway sync task: failed at its time limit, spins on", victim):
        job = tq.enqueue(spin)
        wait_for(lambda: tq.status(job).state == "dead", 60, "the spinning job in the dead letter")
        st = tq.redis.hgetall(tq.keys.job(job))
        assert b"time limit" in st[b"error"] and st[b"failures"] == b"2", st
        m.wait_log("past its time limit", count=2)
        m.wait_workers(1, exclude=first)
    assert assert_conserved(tq.redis, [job]) == {"dead": 1}
    assert m.stop() == 0
    report = check_ledger(tq.redis, [job], ledger, tq.keys)
    assert report.runs == 2 and len(report.excused) == 1  # the retry, after the first run
    assert [r.outcome for r in ledger.runs()[job]] == [None, None]  # neither thread returned


def test_worker_failing_at_boot_is_not_respawned_in_a_tight_loop(redis_url, masters):
    m = masters(redis_url, "-w", "2", imports="tests.tasks_boot_fail")
    m.wait_log("no more respawns", timeout=60)
    failures = m.log().count("failed to boot")
    assert 5 <= failures <= 6, failures
    spawned = m.log().count("spawned worker")
    time.sleep(2)  # nothing may happen here: proving an absence needs a wait
    assert m.log().count("spawned worker") == spawned
    assert m.proc.poll() is None
    assert (m.status() or {}).get("spawn_halted") is True
    assert m.stop() == 0
