"""Poison isolation: a task that kills its worker process is dead-lettered after its stall
limit, and the innocent jobs that shared its process run again alone-safe, never dead."""

from __future__ import annotations

import pytest

from taskqueue.testing import check_ledger, wait_for
from taskqueue.testing import ledger_tasks as lt

LEDGER = ("--import", "taskqueue.testing.ledger_tasks")


def states(tq, ids):
    pipe = tq.redis.pipeline(transaction=False)
    for i in ids:
        pipe.hget(tq.keys.job(i), "state")
    return [(s or b"?").decode() for s in pipe.execute()]


def test_a_suspect_ends_its_batch_and_the_rest_keep_their_order(tq) -> None:
    ids = [tq.enqueue_with("t", (i,), strict=False) for i in range(6)]
    tq.redis.hset(tq.keys.job(ids[2]), "stalls", 1)
    first = tq.run(tq.broker.fetch(["default"], 6, "a", "w")).jobs
    assert [j.id for j in first] == ids[:3] and [j.stalls for j in first] == [0, 0, 1]
    assert [i.decode() for i in tq.redis.lrange(tq.keys.ready("default"), 0, -1)] == ids[3:]
    assert tq.redis.llen(tq.keys.wake("default")) >= 1  # another worker comes for the rest
    second = tq.run(tq.broker.fetch(["default"], 6, "b", "w")).jobs
    assert [j.id for j in second] == ids[3:]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["segv", "exit"])
def test_a_crashing_task_among_200_good_ones_kills_no_good_job(redis_url, tq, masters, ledger,
                                                               how):  # fmt: skip
    m = masters(redis_url, "-w", "2", "--max-concurrent-tasks", "10", *LEDGER, env=ledger.env())
    m.wait_workers(2)
    good = [tq.enqueue(lt.asleep, 0.05, i) for i in range(100)]
    poison = tq.enqueue(lt.crash, how)
    good += [tq.enqueue(lt.asleep, 0.05, i) for i in range(100, 200)]
    ids = [*good, poison]
    wait_for(lambda: all(s in ("succeeded", "dead") for s in states(tq, ids)), 120,
             "every job finished")  # fmt: skip
    st = tq.status(poison)
    assert st.state == "dead" and "worker lost" in st.error, st.error
    assert states(tq, good).count("succeeded") == 200, "no good job dead-lettered"
    # Innocents died with the poison's first crash at most: one stall each, never more.
    stalls = [tq.status(i).stalls for i in good]
    assert max(stalls) <= 1, stalls
    report = check_ledger(tq.redis, ids, ledger)
    assert report.places == {"succeeded": 200, "dead": 1}
    assert m.stop() == 0


@pytest.mark.slow
def test_a_dead_worker_stalls_only_the_jobs_whose_code_ran(redis_url, tq, masters, ledger):
    import os
    import signal

    m = masters(redis_url, "-w", "1", "--max-concurrent-tasks", "2", *LEDGER, env=ledger.env())
    (pid,) = m.wait_workers(1)
    running = tq.enqueue(lt.asleep, 30.0, 1)
    wait_for(lambda: tq.status(running).state == "active", 10, "the long job running")
    tq.pause("default")  # so the worker cannot fetch the next job before it is marked
    waiting = tq.enqueue(lt.asleep, 0.01, 2)
    tq.redis.hset(tq.keys.job(waiting), "stalls", 1)  # a suspect: it must wait to run alone
    tq.resume("default")
    wait_for(lambda: len((m.status() or {"workers": [{"jobs": []}]})["workers"][0]["jobs"]) == 2,
             20, "both jobs reported held")  # fmt: skip
    ledger.fault("sigkill", pid=pid)  # recorded first: it precedes any run it causes
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: tq.status(running).stalls == 1, 20, "the running job stalled")
    assert tq.status(waiting).stalls == 1, "fetched, never started: back without a stall"
    tq.cancel(running)  # (it would hold the next worker for 30 s)
    wait_for(lambda: tq.status(waiting).state == "succeeded", 30, "the suspect ran alone")
    wait_for(lambda: tq.status(running).state == "cancelled", 30, "the long job cancelled")
    assert m.stop(timeout=90) == 0
    report = check_ledger(tq.redis, [running, waiting], ledger, tq.keys)
    assert report.places == {"cancelled": 1, "succeeded": 1}
    # The suspect never started before the kill: it ran once. The long job may have started
    # again before the cancel: only that second run is excused, by the SIGKILL.
    assert len(ledger.runs()[waiting]) == 1 and len(report.excused) <= 1
