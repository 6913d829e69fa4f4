"""Network faults between a worker host and Redis, through a proxy the test controls
(``taskqueue.testing.proxy``): latency, connection resets, partitions shorter and longer than the
lease. Every run is counted by the execution ledger; duplicates are allowed only where a fault
the test recorded explains them, and for latency and short partitions none is recorded at all,
so any duplicate fails the test."""

from __future__ import annotations

import signal
import threading

import pytest
import redis

from taskqueue import TaskQueue
from taskqueue.testing import wait_for
from taskqueue.testing.ledger import Ledger, check_ledger, recovery
from taskqueue.testing.proxy import FaultProxy
from tests import tasks_faults  # noqa: F401 - registers the ledger tasks for enqueue by name

TASKS = "tests.tasks_faults"


def port_of(url: str) -> int:
    return redis.Redis.from_url(url).connection_pool.connection_kwargs["port"]


def all_done(tq: TaskQueue, ids: list[str]) -> bool:
    lengths = tq.queue_lengths().get("default", {})
    return (
        not lengths.get("queued")
        and not lengths.get("active")
        and all(tq.status(i).state == "succeeded" for i in ids[-20:])
    )


def two_workers_behind(proxy: FaultProxy, masters, ledger: Ledger, lease_seconds: float):
    """A master with 2 worker processes that reach Redis through ``proxy``, running ledger tasks."""
    env = {**ledger.env(), "TASKQUEUE_WORKERS__LEASE_SECONDS": str(lease_seconds)}
    m = masters(proxy.url, "-w", "2", env=env, imports=TASKS)
    m.wait_workers(2, timeout=60)
    return m


def unexcused_fault(ledger: Ledger, kind: str, seconds: float, begin, end) -> None:
    """``begin()`` a fault, let it last ``seconds`` (the fault itself, not a wait for an event),
    ``end()`` it. Marked in the ledger for the recovery figures only: a mark excuses no
    duplicate, so the test proves none happened."""
    begin()
    ledger.mark(kind)
    threading.Event().wait(seconds)
    end()
    ledger.healed(kind)


@pytest.mark.slow
def test_latency_50_to_500_ms_loses_nothing_and_runs_nothing_twice(
    redis_url, masters, tmp_path
) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    with FaultProxy(port_of(redis_url)) as proxy:
        proxy.latency(0.05, 0.5)
        m = masters(proxy.url, "-w", "2", env=ledger.env(), imports=TASKS)
        m.wait_workers(2, timeout=60)
        tq = TaskQueue(redis_url)
        ids = tq.enqueue_many([("ledger.sleep", (0.01, i), {}) for i in range(150)])
        wait_for(lambda: all_done(tq, ids), 180, "the jobs to finish through a slow link")
        report = check_ledger(tq.redis, ids, ledger)  # no fault recorded: no duplicate excused
        assert report.places["succeeded"] == 150 and report.runs == 150
        assert m.stop(timeout=120) == 0


@pytest.mark.slow
def test_connections_reset_mid_command_lose_nothing(redis_url, masters, tmp_path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    with FaultProxy(port_of(redis_url)) as proxy:
        m = masters(proxy.url, "-w", "2", env=ledger.env(), imports=TASKS)
        m.wait_workers(2, timeout=60)
        tq = TaskQueue(redis_url)
        ids = tq.enqueue_many([("ledger.sleep", (0.005, i), {}) for i in range(1500)])
        cuts = 0
        stop = threading.Event()

        def resetter() -> None:
            nonlocal cuts
            while not stop.wait(0.3):
                ledger.fault("tcp_reset")  # no pid: it may hit any process's command in flight
                cuts += proxy.reset()

        t = threading.Thread(target=resetter, daemon=True)
        t.start()
        wait_for(lambda: len(ledger.runs()) > 1000, 120, "jobs to run under resets")
        stop.set()
        t.join()
        wait_for(lambda: all_done(tq, ids), 180, "the jobs to finish after the resets")
        report = check_ledger(tq.redis, ids, ledger)
        assert cuts > 5, "the resets should hit live connections"
        assert report.places["succeeded"] == 1500
        assert m.stop(timeout=120) == 0


@pytest.mark.slow
def test_partition_shorter_than_the_lease_runs_nothing_twice(redis_url, masters, tmp_path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    with FaultProxy(port_of(redis_url)) as proxy:
        m = two_workers_behind(proxy, masters, ledger, lease_seconds=10)
        tq = TaskQueue(redis_url)
        ids = tq.enqueue_many([("ledger.sleep", (0.5, i), {}) for i in range(40)])
        wait_for(lambda: len(ledger.runs()) >= 5, 60, "jobs to start")
        # A 2 s cut, well inside the 10 s lease.
        unexcused_fault(ledger, "partition", 2.0, proxy.partition, proxy.heal)
        wait_for(lambda: all_done(tq, ids), 180, "the jobs to finish after the heal")
        report = check_ledger(tq.redis, ids, ledger)  # no fault recorded: no duplicate excused
        print(f"\n{len(ids)} jobs, {report.runs} runs, "
              f"recovery: {recovery(ledger, 'partition').summary()}")  # fmt: skip
        assert report.runs == 40
        assert m.stop(timeout=120) == 0


@pytest.mark.slow
def test_partition_longer_than_the_lease_moves_jobs_and_refuses_late_acks(
    redis_url, masters, tmp_path
) -> None:
    """Host A is cut off past its 3 s leases while its jobs run; host B, on a direct link,
    recovers them and runs them. On the heal A's late acks are refused (the ledger's third rule:
    every stored result names the run of the last lease), and A reconnects by itself and takes
    new work."""
    ledger = Ledger(tmp_path / "ledger.jsonl")
    env = {**ledger.env(), "TASKQUEUE_WORKERS__LEASE_SECONDS": "3"}
    with FaultProxy(port_of(redis_url)) as proxy:
        a = masters(proxy.url, "-w", "1", "--max-concurrent-tasks", "4", env=env, imports=TASKS)
        a_pids = a.wait_workers(1, timeout=60)
        tq = TaskQueue(redis_url)
        ids = tq.enqueue_many([("ledger.sleep", (2.0, i), {}) for i in range(4)])
        wait_for(lambda: len(ledger.runs()) == 4, 60, "host A to start all four jobs")
        proxy.partition()
        for pid in [a.pid, *a_pids]:
            ledger.fault("partition", pid=pid)
        b = masters(redis_url, "-w", "1", "--max-concurrent-tasks", "4", env=env, imports=TASKS)
        b.wait_workers(1, timeout=60)
        wait_for(lambda: all(tq.status(i).state == "succeeded" for i in ids), 90,
                 "host B to recover and run A's jobs")  # fmt: skip
        proxy.heal()
        b.send(signal.SIGTSTP)  # B goes quiet: the next jobs can only run on A
        later = tq.enqueue_many([("ledger.noop", (i,), {}) for i in range(10)])
        wait_for(lambda: all(tq.status(i).state == "succeeded" for i in later), 90,
                 "host A to reconnect by itself and take new work")  # fmt: skip
        report = check_ledger(tq.redis, ids + later, ledger)
        print(f"\n{len(ids)} cut jobs, {len(report.excused)} excused reruns, "
              f"recovery: {recovery(ledger, 'partition').summary()}")  # fmt: skip
        runs = ledger.runs()
        assert all(len(runs[i]) == 2 for i in ids), "each cut job ran on A, then again on B"
        assert all(runs[i][-1].pid != runs[i][0].pid for i in ids)
        assert len(report.excused) == 4
        b.send(signal.SIGCONT)
        assert a.stop(timeout=120) == 0
        assert b.stop(timeout=120) == 0


@pytest.mark.slow
@pytest.mark.parametrize("stall", [2.0, 7.0], ids=["shorter than the command timeout",
                                                   "longer than the command timeout"])  # fmt: skip
def test_stalled_reads_lose_nothing_and_run_nothing_twice(
    redis_url, masters, tmp_path, stall
) -> None:
    """Redis runs every command, but its replies stall in the proxy for ``stall`` seconds. Within
    the 5 s command timeout the workers just wait. Past it they drop their connections, and the
    replies are lost: a fetch whose reply was lost leaves its jobs leased to nobody until the
    10 s lease lapses, an ack whose reply was lost is sent again and answered as the first was
    (it used to be refused, and logged as a duplicate execution that never happened). Either
    way no job runs twice, and no fault is recorded to excuse one."""
    ledger = Ledger(tmp_path / "ledger.jsonl")
    with FaultProxy(port_of(redis_url)) as proxy:
        m = two_workers_behind(proxy, masters, ledger, lease_seconds=10)
        tq = TaskQueue(redis_url)
        ids = tq.enqueue_many([("ledger.sleep", (0.05, i), {}) for i in range(400)])
        wait_for(lambda: len(ledger.runs()) >= 50, 60, "jobs to run")
        # Then the held replies go out, on whatever connections are left.
        unexcused_fault(ledger, "stalled_reads", stall, proxy.stall_replies,
                        lambda: proxy.heal(reset=False))  # fmt: skip
        wait_for(lambda: all_done(tq, ids), 180, "the jobs to finish after the stall")
        report = check_ledger(tq.redis, ids, ledger)  # nothing recorded: no duplicate excused
        print(f"\n{stall:.0f} s stall: {len(ids)} jobs, {report.runs} runs, "
              f"recovery: {recovery(ledger, 'stalled_reads').summary()}")  # fmt: skip
        assert report.places["succeeded"] == len(ids) and report.runs == len(ids)
        # An ack or fail whose reply was lost is sent again and answered as the first was:
        # no lease was lost, so none is reported lost.
        assert "after its lease was lost" not in m.log()
        if stall > 5:
            assert "lost Redis (TimeoutError" in m.log(), "the long stall should time reads out"
        assert m.stop(timeout=120) == 0
