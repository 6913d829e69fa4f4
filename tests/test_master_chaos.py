"""Chaos: processes SIGKILLed, SIGSTOPped, Redis restarted. Every job is counted at the end, and
every run is checked against the execution ledger (``taskqueue.testing.ledger``): nothing ran
twice except where the test broke something, and no late ack landed."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
import redis

from taskqueue import TaskQueue
from taskqueue.testing import assert_conserved, check_ledger, wait_for
from taskqueue.testing.ledger import recovery
from taskqueue.testing.ledger_tasks import asleep, sleep

pytestmark = pytest.mark.slow
FAST_LEASE = {"TASKQUEUE_WORKERS__LEASE_SECONDS": "3", "TASKQUEUE_WORKERS__MAX_STALLS": "50"}
LEDGER = ("--import", "taskqueue.testing.ledger_tasks")


def counts(tq: TaskQueue, ids: list[str], field: str = "state") -> list[bytes | None]:
    out = []
    for i in range(0, len(ids), 2000):
        pipe = tq.redis.pipeline(transaction=False)
        for j in ids[i : i + 2000]:
            pipe.hget(tq.keys.job(j), field)
        out += pipe.execute()
    return out


def succeeded(tq: TaskQueue, ids: list[str]) -> int:
    return sum(s == b"succeeded" for s in counts(tq, ids))


def test_worker_sigkilled_every_half_second(redis_url, tq, masters, ledger):
    n = 20_000
    m = masters(redis_url, "-w", "4", *LEDGER, env=FAST_LEASE | ledger.env())
    m.wait_workers(4)
    # 20 ms of (async) work per job keeps the run long enough for a kill every 0.5 s to land
    # mid-run many times (4 workers x 10 slots: at most ~2,000 jobs/s).
    ids = tq.enqueue_many([(asleep, (0.02, i)) for i in range(n)])
    kills = 0
    deadline = time.monotonic() + 240
    while succeeded(tq, ids) < n:
        assert time.monotonic() < deadline, f"only {succeeded(tq, ids)}/{n} done"
        victims = [p for p in m.children() if p.status() != psutil.STATUS_ZOMBIE]
        if victims and kills < 60:
            victim = victims[kills % len(victims)].pid
            os.kill(victim, signal.SIGKILL)
            ledger.fault("sigkill", pid=victim)
            kills += 1
        time.sleep(0.5)  # the kill cadence itself, not a wait for a condition
    redelivered = sum(1 for s in counts(tq, ids, "stalls") if s and int(s) > 0)
    print(f"\n{n} jobs, {kills} workers SIGKILLed, {redelivered} jobs redelivered")
    assert kills >= 5
    # A kill redelivers what that worker held: up to 10 running jobs plus finished ones whose
    # batched ack had not reached Redis yet (those are the duplicate executions).
    assert redelivered <= kills * 20
    assert assert_conserved(tq.redis, ids) == {"succeeded": n}
    report = check_ledger(tq.redis, ids, ledger)
    print(f"recovery: {recovery(ledger, 'sigkill').summary()}")
    assert report.runs >= n and len(report.excused) <= kills * 20
    assert m.stop() == 0


def test_master_sigkilled_workers_exit_and_a_second_master_finishes(redis_url, tq, masters,
                                                                  ledger):  # fmt: skip
    env = FAST_LEASE | ledger.env()
    m = masters(redis_url, "-w", "2", "--max-concurrent-tasks", "3", *LEDGER, env=env)
    workers = m.wait_workers(2)
    ids = [tq.enqueue(sleep, 1.0, i) for i in range(30)]
    wait_for(lambda: counts(tq, ids).count(b"active") >= 6, 10, "jobs in flight")
    m.proc.kill()
    m.wait(10)
    kind = "master sigkill: its workers quit"
    ledger.fault(kind)
    for pid in workers:
        wait_for(lambda pid=pid: not psutil.pid_exists(pid) or
                 psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, 10, "worker exit")  # fmt: skip
    m2 = masters(redis_url, "-w", "2", "--max-concurrent-tasks", "5", *LEDGER, env=env)
    wait_for(lambda: succeeded(tq, ids) == 30, 60, "second master finishes every job")
    assert assert_conserved(tq.redis, ids) == {"succeeded": 30}
    check_ledger(tq.redis, ids, ledger)
    print(f"\nrecovery: {recovery(ledger, kind).summary()}")
    assert m2.stop() == 0


def test_sigstopped_worker_is_killed_and_its_jobs_run_elsewhere(redis_url, tq, masters, ledger):
    env = {"TASKQUEUE_WORKERS__HUNG_TIMEOUT": "3", "TASKQUEUE_WORKERS__HEARTBEAT_INTERVAL": "0.5"}
    m = masters(redis_url, "-w", "2", "--max-concurrent-tasks", "2", *LEDGER,
                env=env | ledger.env())  # fmt: skip
    pids = m.wait_workers(2)
    ids = [tq.enqueue(asleep, 4.0, i) for i in range(4)]  # longer than a status interval
    wait_for(lambda: all(len(w["jobs"]) == 2 for w in m.status()["workers"]), 30, "busy")
    os.kill(pids[0], signal.SIGSTOP)
    ledger.fault("sigstop", pid=pids[0])
    m.wait_log("sent no heartbeat", timeout=20)
    wait_for(lambda: succeeded(tq, ids) == 4, 30, "every job succeeded")
    m.wait_workers(2, exclude={pids[0]})
    assert assert_conserved(tq.redis, ids) == {"succeeded": 4}
    assert len(check_ledger(tq.redis, ids, ledger).excused) == 2
    print(f"\nrecovery: {recovery(ledger, 'sigstop').summary()}")
    assert m.stop() == 0


def test_sigstopped_master_late_acks_are_rejected(redis_url, tq, masters, ledger):
    env = FAST_LEASE | ledger.env()
    m = masters(redis_url, "-w", "1", "--max-concurrent-tasks", "4", *LEDGER, env=env)
    m.wait_workers(1)
    ids = [tq.enqueue(sleep, 5.0, i) for i in range(4)]
    wait_for(lambda: counts(tq, ids).count(b"active") == 4, 10, "jobs in flight")
    kind = "sigstop master: its leases lapse"
    with ledger.fault_window(kind):
        m.send(signal.SIGSTOP)
        try:
            m2 = masters(redis_url, "-w", "1", "--max-concurrent-tasks", "4", *LEDGER, env=env)
            wait_for(lambda: succeeded(tq, ids) == 4, 60, "the second master finishes the jobs")
        finally:
            m.send(signal.SIGCONT)
    wait_for(lambda: "duplicate execution" in m.log() or "lease of job" in m.log(), 30,
             "the first master's late results rejected")  # fmt: skip
    assert assert_conserved(tq.redis, ids) == {"succeeded": 4}
    # The ledger proves the late results were not stored: each result names the second run.
    assert len(check_ledger(tq.redis, ids, ledger).excused) >= 4
    print(f"\nrecovery: {recovery(ledger, kind).summary()}")
    assert m.stop() == 0 and m2.stop() == 0


def test_redis_restart_under_load(redis_factory, masters, ledger):
    server = redis_factory(aof=True)
    tq = TaskQueue(server.url)
    m = masters(server.url, "-w", "2", *LEDGER, env=ledger.env())
    m.wait_workers(2)
    ids = tq.enqueue_many([(asleep, (0.01, i)) for i in range(3000)])
    wait_for(lambda: succeeded(tq, ids) > 200, 30, "some jobs done")
    server.kill()
    ledger.fault("redis sigkill")
    time.sleep(1.5)  # an outage long enough for several reconnect attempts (not a race guard)
    server.start()
    ledger.healed("redis sigkill")  # excuses nothing: times the runs after the restart
    wait_for(lambda: _safe(lambda: succeeded(tq, ids)) == 3000, 120, "every job done")
    assert assert_conserved(tq.redis, ids) == {"succeeded": 3000}
    check_ledger(tq.redis, ids, ledger)
    print(f"\nrecovery: {recovery(ledger, 'redis sigkill').summary()}")
    log = m.log()
    assert log.count("taskqueue.master lost Redis") == 1, log[-3000:]
    assert log.count("taskqueue.master Redis is back") == 1
    assert m.stop() == 0
    tq.close()


def _safe(fn):
    try:
        return fn()
    except redis.RedisError:
        return None
