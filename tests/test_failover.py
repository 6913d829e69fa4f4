"""A primary dies under load and a replica takes over, on Redis Cluster and under Sentinel: the
masters, workers and producers follow it with no operator action, and every job is accounted for.

What a failover can lose: Redis replicates asynchronously, so writes the dead primary answered
but had not yet sent to its replica are gone. taskqueue's answer, measured here:
- enqueues: the producer uses ``[redis] min_replicas_acked = 1`` (WAIT on the enqueue's own
  connection), so an enqueue is acknowledged only once the replica has it; a call cut by the
  failover is retried with the same idempotency key (the existing job, or a new one if the
  write was lost). Result: no acknowledged job is lost.
- acks, fails and lease renewals of the last moments may be lost: the job is then still leased
  (or queued) on the new primary, its lease expires and it runs again. Those second runs are the
  only duplicates; the execution ledger checks each follows a run that the failover hit.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import running_worker

from taskqueue import TaskQueue, task
from taskqueue.connection import RedisSettings
from taskqueue.errors import TaskQueueError
from taskqueue.testing import wait_for
from taskqueue.testing.cluster import LocalCluster
from taskqueue.testing.ledger import Ledger, check_ledger, recovery
from taskqueue.testing.sentinel import LocalSentinel
from tests import tasks_faults  # noqa: F401 - registers the ledger tasks

pytestmark = pytest.mark.slow
TASKS = "tests.tasks_faults"


def failover_under_load(url: str, kill: Callable[[Callable[[], None]], None], masters,
                        tmp_path: Path) -> dict:  # fmt: skip
    """Kill the primary under load: ``kill(promoted)`` calls ``promoted()`` once a replica has
    taken over (it times the recovery, and excuses nothing)."""
    ledger = Ledger(tmp_path / "ledger.jsonl")
    env = {**ledger.env(), "TASKQUEUE_WORKERS__LEASE_SECONDS": "3"}
    m = masters(url, "-w", "2", env=env, imports=TASKS)
    m.wait_workers(2, timeout=60)
    tq = TaskQueue(RedisSettings(url, min_replicas_acked=1, replica_ack_timeout=5.0))
    acked: list[str] = []
    retried = 0
    stop = threading.Event()

    def producer() -> None:
        nonlocal retried
        i = 0
        while not stop.is_set():
            try:
                acked.append(tq.enqueue_with("ledger.sleep", (0.002, i), key=f"job-{i}"))
                i += 1
            except TaskQueueError:  # unavailable, or not replicated: same key again
                retried += 1
                stop.wait(0.05)

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    wait_for(lambda: len(acked) > 300 and len(ledger.runs()) > 150, 120, "enqueues and runs")
    ledger.fault("primary_killed")
    kill(lambda: ledger.healed("primary_killed"))
    at_kill = len(acked)
    wait_for(lambda: len(acked) > at_kill + 300, 120, "enqueues to resume on the new primary")
    stop.set()
    thread.join(30)
    wait_for(lambda: all(tq.status(j).state == "succeeded" for j in acked[-20:]), 180,
             "the workers to follow the new primary")  # fmt: skip
    wait_for(lambda: not sum(q["queued"] + q["active"] + q["scheduled"]
                             for q in tq.queue_lengths().values()),
             180, "every job to finish")  # fmt: skip
    report = check_ledger(tq.redis, acked, ledger)  # each job in one place, reruns explained
    assert report.places == {"succeeded": len(acked)}, report.places
    assert len(set(acked)) == len(acked), "an idempotent retry made a second job"
    assert m.stop(timeout=120) == 0
    outcome = {"jobs": len(acked), "runs": report.runs, "duplicates": report.runs - len(acked),
               "excused": len(report.excused), "enqueue_retries": retried,
               "recovery": recovery(ledger, "primary_killed").summary()}  # fmt: skip
    print(f"failover outcome: {outcome}")
    tq.close()
    return outcome


def test_cluster_primary_killed_under_load(redis_cluster: LocalCluster, cluster_url, masters,
                                           tmp_path):  # fmt: skip
    def kill(promoted: Callable[[], None]) -> None:
        victim = redis_cluster.kill_primary("tq:{default}:")
        promoted()
        # With one replica per primary, the promoted node has none left: acknowledged enqueues
        # (WAIT 1) fail with NotReplicated until the old node is back, as a replica.
        victim.start()

    outcome = failover_under_load(cluster_url, kill, masters, tmp_path)
    assert outcome["duplicates"] == outcome["excused"]
    redis_cluster.wait_healthy()


def test_sentinel_failover_under_load(redis_sentinel: LocalSentinel, sentinel_url, masters,
                                      tmp_path):  # fmt: skip
    before = redis_sentinel.switches()

    def kill(promoted: Callable[[], None]) -> None:
        redis_sentinel.kill_primary()
        promoted()
        # The old primary comes back empty, as a replica of the new one, and cannot be
        # promoted until it is in sync (see LocalSentinel.heal): on a loaded machine a stall of
        # the new primary once made the Sentinels promote the empty node, and every job
        # enqueued before the kill was gone.
        redis_sentinel.heal()

    try:
        outcome = failover_under_load(sentinel_url, kill, masters, tmp_path)
    except AssertionError as exc:
        switches = redis_sentinel.switches() - before
        raise AssertionError(
            f"{exc} (the Sentinels switched primaries {switches} time(s))"
        ) from exc
    assert outcome["duplicates"] == outcome["excused"]
    print(f"Sentinel switches: {redis_sentinel.switches() - before}")


def test_a_restarted_empty_node_is_not_promoted_before_it_has_synced() -> None:
    """The cause of a CI failure: the old primary, restarted empty as a replica, was promoted
    by a second failover while the new primary stalled (a loaded machine), and the data set
    was gone. Sentinel counts a replica that has never reached its primary as a candidate;
    ``heal`` restarts it with replica-priority 0 until it is in sync. Here the new primary
    stalls (SIGSTOP) for longer than down-after-milliseconds while the old one restarts."""
    with LocalSentinel() as s:
        with s.primary().client() as c:
            c.mset({f"k{i}": i for i in range(1000)})
            assert c.wait(1, 5000) == 1
        s.kill_primary()
        new = s.primary()
        assert new.proc is not None
        healing = threading.Thread(target=s.heal, daemon=True)
        new.proc.send_signal(signal.SIGSTOP)
        try:
            healing.start()
            stall = threading.Event()
            stall.wait(3 * 2.0)  # the fault: a stall longer than down-after (2 s) and then some
        finally:
            new.proc.send_signal(signal.SIGCONT)
        healing.join(90)
        assert not healing.is_alive(), "heal did not finish"
        assert s.primary() is new, "the empty node was promoted"
        with new.client() as c:
            assert c.dbsize() == 1000


def test_blocking_waits_follow_a_slot_move(redis_cluster: LocalCluster, cluster_url, reg):
    """An idle worker blocked on its wake list and a result waiter, while the namespace's slot
    is migrated to another primary: Redis answers the blocked commands with MOVED, redis-py
    follows the new map, and jobs enqueued after the move are worked and their results seen."""

    @task(name="twice", registry=reg)
    def twice(x: int) -> int:
        return 2 * x

    tq = TaskQueue(cluster_url, registry=reg)
    with running_worker(tq, reg, queues=["default"]):
        assert tq.result(tq.enqueue(twice, 1), timeout=30) == 2  # the worker is idle now
        waiting = tq.enqueue_with(twice, (5,), delay=3.0)
        before = redis_cluster.primary_of("tq:{default}:")
        after = redis_cluster.move_slot("tq:{default}:")
        assert after is not before
        assert tq.result(waiting, timeout=60) == 10  # a delayed job queued before the move
        assert [tq.result(tq.enqueue(twice, i), timeout=60) for i in range(20)] == [
            2 * i for i in range(20)]  # fmt: skip
    tq.close()


@pytest.mark.slow
def test_the_masters_control_inbox_follows_a_slot_move(redis_cluster: LocalCluster, cluster_url,
                                                        masters) -> None:  # fmt: skip
    """A master blocked on its control inbox while the namespace's slot moves: a command sent
    after the move reaches it and is answered (tqctl on a cluster, before and after)."""
    from taskqueue.connection import connect
    from taskqueue.control.client import ControlClient
    from taskqueue.keys import Keys

    m = masters(cluster_url, "-w", "1")
    m.wait_workers(1, timeout=60)
    ctl = ControlClient(connect(RedisSettings(cluster_url)), Keys())
    assert ctl.send(m.id, "scale", {"n": 2}, timeout=30).ok
    m.wait_workers(2, timeout=60)
    before = redis_cluster.primary_of("tq:{default}:")
    assert redis_cluster.move_slot("tq:{default}:") is not before
    reply = ctl.send(m.id, "scale", {"delta": -1}, timeout=60)
    assert reply.ok, reply.message
    m.wait_workers(1, timeout=60)
    assert [r["id"] for r in ctl.masters()] == [m.id]
    ctl.redis.close()
