"""The failure-injection suite (docs/reliability.md): faults a production queue meets, on real
masters and workers, every run counted by the execution ledger (``taskqueue.testing.ledger``).

Timing: nothing here asserts how fast something happened. The retry-schedule test asserts the
backoff's lower bound (a retry never comes early) exactly, and its upper bound with a slack that
absorbs scheduling on a loaded machine; both are the behaviour the backoff promises.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter

import pytest
import redis

from taskqueue import TaskQueue
from taskqueue.backoff import bounds_ms
from taskqueue.testing import assert_conserved, wait_for
from taskqueue.testing.ledger import Ledger, check_ledger
from tests import tasks_faults

TASKS = "tests.tasks_faults"
#: Extra seconds a due retry may take to start on a loaded 2-core machine (promotion, wake-up).
LATE_SLACK = 3.0


def calls(client: redis.Redis) -> Counter[str]:
    return Counter({k: v["calls"] for k, v in client.info("commandstats").items()})


def quiet(client: redis.Redis, seconds: float = 1.0, most: int = 6) -> bool:
    before = calls(client)
    threading.Event().wait(seconds)
    return (calls(client) - before).total() <= most


@pytest.mark.slow
def test_thundering_herd_one_job_wakes_one_run_not_a_storm(redis_url, masters, tmp_path) -> None:
    """200 idle worker slots (2 masters x 2 processes x 50) and one job: exactly one run, and
    the wake-up costs a handful of commands, not one per slot."""
    ledger = Ledger(tmp_path / "ledger.jsonl")
    flags = ("-w", "2", "--max-concurrent-tasks", "50")
    ms = [masters(redis_url, *flags, env=ledger.env(), imports=TASKS) for _ in range(2)]
    for m in ms:
        m.wait_workers(2)
    r = redis.Redis.from_url(redis_url)
    wait_for(lambda: quiet(r), 30, "start-up traffic to settle")
    tq = TaskQueue(redis_url)
    before = calls(r)
    job = tq.enqueue_with("ledger.noop", (1,), strict=False)
    wait_for(lambda: tq.status(job).state == "succeeded", 20, "the job to run")
    used = calls(r) - before
    report = check_ledger(r, [job], ledger)
    assert report.runs == 1
    # Script calls: the enqueue, at most one fetch per woken process (4), the ack, a stray
    # housekeeping call. A storm would be one fetch per slot: 200 script calls, and well over
    # 1,000 commands once the commands inside the scripts (which commandstats counts) are added.
    scripts = used["cmdstat_evalsha"] + used["cmdstat_eval"]
    assert scripts <= 1 + 4 + 1 + 2, f"script calls for one job: {dict(used)}"
    assert used.total() <= 150, f"commands for one job with 200 idle slots: {dict(used)}"
    for m in ms:
        assert m.stop() == 0


@pytest.mark.slow
def test_retry_delays_follow_the_backoff_end_to_end(redis_url, masters, tmp_path) -> None:
    """A task that always fails: every retry starts no sooner than the backoff's lower bound and
    not much after its upper bound, then the job is dead-lettered after max_retries."""
    ledger = Ledger(tmp_path / "ledger.jsonl")
    m = masters(redis_url, "-w", "1", env=ledger.env(), imports=TASKS)
    m.wait_workers(1)
    tq = TaskQueue(redis_url)
    jobs = [tq.enqueue_with(tasks_faults.flaky, (i,)) for i in range(3)]
    wait_for(lambda: all(tq.status(j).state == "dead" for j in jobs), 60, "jobs to die")
    runs = ledger.runs()
    seen: dict[int, list[float]] = {}
    for job in jobs:
        attempts = runs[job]
        assert [r.attempt for r in attempts] == [1, 2, 3, 4]  # max_retries=3
        assert all(r.outcome == "error" for r in attempts)
        for n, (prev, cur) in enumerate(zip(attempts, attempts[1:], strict=False), start=1):
            low, high = bounds_ms(n, base=1.0, cap=60.0)
            gap = cur.started - prev.finished  # type: ignore[operator]
            assert gap >= low / 1000 - 0.05, f"retry {n} of {job} came early: {gap:.3f}s"
            assert gap <= high / 1000 + LATE_SLACK, f"retry {n} of {job} came late: {gap:.3f}s"
            seen.setdefault(n, []).append(gap)
        assert tq.status(job).failures == 4
    for n, gaps in sorted(seen.items()):
        low, high = bounds_ms(n, base=1.0, cap=60.0)
        print(f"retry {n}: bounds {low / 1000:.1f}-{high / 1000:.1f} s, observed "
              f"{min(gaps):.3f}-{max(gaps):.3f} s")  # fmt: skip
    check_ledger(tq.redis, jobs, ledger)
    assert m.stop() == 0


@pytest.mark.slow
def test_max_retries_holds_across_a_master_restart(redis_url, masters, tmp_path) -> None:
    """The attempt count lives in Redis: a master stopped and replaced between two attempts does
    not give the job more (or fewer) runs than max_retries + 1."""
    ledger = Ledger(tmp_path / "ledger.jsonl")
    first = masters(redis_url, "-w", "1", env=ledger.env(), imports=TASKS)
    first.wait_workers(1)
    tq = TaskQueue(redis_url)
    job = tq.enqueue_with(tasks_faults.flaky_slow, (1,))
    wait_for(lambda: len(ledger.runs().get(job, [])) == 1 and tq.status(job).state == "scheduled",
             30, "the first attempt to fail")  # fmt: skip
    assert first.stop() == 0
    ledger.fault("master_restart")
    second = masters(redis_url, "-w", "1", env=ledger.env(), imports=TASKS)
    second.wait_workers(1)
    wait_for(lambda: tq.status(job).state == "dead", 60, "the job to exhaust its retries")
    assert [r.attempt for r in ledger.runs()[job]] == [1, 2, 3]  # max_retries=2
    assert tq.status(job).failures == 3
    check_ledger(tq.redis, [job], ledger)
    assert second.stop() == 0


def test_idempotency_key_is_kept_for_its_ttl_then_reused(redis_url) -> None:
    """Before the key's TTL ends, the same key returns the first job (even once it finished);
    after it, the key names a new job. Judged on the key's TTL in Redis, not on a clock."""
    tq = TaskQueue(redis_url, broker_options={"idem_ttl_ms": 1500})
    first = tq.enqueue_with("t", (1,), strict=False, key="invoice:7")
    idem = tq.keys.idem("invoice:7")
    ttl = tq.redis.pttl(idem)
    assert 0 < ttl <= 1500
    for _ in range(5):
        assert tq.enqueue_with("t", (2,), strict=False, key="invoice:7") == first
    assert tq.redis.pttl(idem) <= ttl, "a repeated enqueue does not extend the window"
    tq.cancel(first)  # finished: still deduplicated while the key lives
    if tq.redis.exists(idem):
        assert tq.enqueue_with("t", (3,), strict=False, key="invoice:7") == first
    wait_for(lambda: not tq.redis.exists(idem), 10, "the idempotency key to expire")
    second = tq.enqueue_with("t", (4,), strict=False, key="invoice:7")
    assert second != first
    assert tq.enqueue_with("t", (5,), strict=False, key="invoice:7") == second
    assert_conserved(tq.redis, [first, second])


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["none", "worker_kill", "master_restart", "master_kill",
                                   "retries"])  # fmt: skip
def test_cancel_races_end_in_one_state(redis_url, masters, tmp_path, fault) -> None:
    """Cancels fired from two threads at random moments while jobs run, complete, are released
    by a graceful restart, are given back by the master after a SIGKILLed worker, are recovered
    by lease expiry after a SIGKILLed master (its workers die with it), or wait for a retry
    (every third job fails once and is retried 0.1-0.5 s later): every job ends in exactly one
    terminal state, a cancelled job's result is never stored, and no job runs after a cancel
    that found it waiting."""
    rng = random.Random(f"cancel-{fault}")
    ledger = Ledger(tmp_path / "ledger.jsonl")
    flags = ("-w", "2", "--max-concurrent-tasks", "4")
    env = ledger.env()
    if fault == "master_kill":  # recovery waits for the dead master's leases to lapse
        env["TASKQUEUE_WORKERS__LEASE_SECONDS"] = "3"
    m = masters(redis_url, *flags, env=env, imports=TASKS)
    pids = m.wait_workers(2)
    tq = TaskQueue(redis_url)

    def call(i: int) -> tuple:
        if fault == "retries" and i % 3 == 0:
            return ("faults.fail_fast", (i,), {})
        return ("ledger.sleep", (rng.choice([0.0, 0.01, 0.05]), i), {})

    ids = tq.enqueue_many([call(i) for i in range(300)])
    removed_at: dict[str, float] = {}

    def canceller(seed: int) -> None:
        local = random.Random(seed)
        c = TaskQueue(redis_url)
        for job in local.sample(ids, 120):
            if c.run(c.broker.cancel(job, "default")) == "cancelled":
                removed_at[job] = time.time()
            threading.Event().wait(local.uniform(0, 0.01))
        c.close()

    threads = [threading.Thread(target=canceller, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    if fault == "worker_kill":
        wait_for(lambda: len(ledger.runs()) > 60, 30, "jobs to run")
        ledger.fault("sigkill", pid=pids[0])
        os.kill(pids[0], signal.SIGKILL)
    elif fault == "master_restart":
        wait_for(lambda: len(ledger.runs()) > 60, 30, "jobs to run")
        assert m.stop() == 0
        m = masters(redis_url, *flags, env=env, imports=TASKS)
    elif fault == "master_kill":
        wait_for(lambda: len(ledger.runs()) > 60, 30, "jobs to run")
        ledger.fault("sigkill of the master", pid=None)
        m.proc.kill()
        m.wait(10)
        m = masters(redis_url, *flags, env=env, imports=TASKS)
    for t in threads:
        t.join(60)
    wait_for(lambda: all(tq.status(j).state in ("succeeded", "cancelled", "dead") for j in ids),
             90, "every job to finish or be cancelled")  # fmt: skip
    report = check_ledger(tq.redis, ids, ledger)
    states = Counter(tq.status(j).state for j in ids)
    assert states["cancelled"] >= len(removed_at) > 0, dict(states)
    runs = ledger.runs()
    for job, at in removed_at.items():
        late = [r for r in runs.get(job, []) if r.started > at]
        assert not late, f"{job} ran after a cancel removed it from its queue: {late}"
    for job in ids:
        st = tq.status(job)
        if st.state == "cancelled":
            assert tq.redis.hget(tq.keys.job(job), "result") is None
    assert report.places.get("succeeded", 0) + states["cancelled"] + states["dead"] == len(ids)
    assert m.stop() == 0
