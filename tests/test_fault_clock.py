"""Clock skew: a master and its workers whose clocks are an hour off (libfaketime, Debian's
`faketime` package) still follow Redis time for delays, retries and leases.

Beside the skewed host runs a host with a true clock, sharing the queue. If the skewed host
computed leases with its own clock, an hour behind would hand the other host its running jobs
(duplicates the ledger refuses) and an hour ahead would keep a killed worker's jobs leased for an
hour (the wait for recovery below would time out). Delays are checked on the job records, which
hold Redis time; expiry is checked both ways; retries are counted (the failing job dies after
exactly its attempts).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from taskqueue import TaskQueue
from taskqueue.testing import wait_for
from taskqueue.testing.ledger import Ledger, check_ledger
from tests import tasks_faults

TASKS = "tests.tasks_faults"
LIBFAKETIME = [
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
    Path("/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"),
    Path("/usr/lib/faketime/libfaketime.so.1"),
]


def faketime_env(offset_s: int) -> dict[str, str]:
    lib = next((p for p in LIBFAKETIME if p.exists()), None)
    if lib is None:
        pytest.skip("libfaketime is not installed (Debian package `faketime`; .ci/run installs it)")
    return {"LD_PRELOAD": str(lib), "FAKETIME": f"{offset_s:+d}", "FAKETIME_DONT_RESET": "1"}


@pytest.mark.slow
@pytest.mark.parametrize("skew", [-3600, 3600], ids=["an hour behind", "an hour ahead"])
def test_a_skewed_host_follows_redis_time(redis_url, masters, tmp_path, skew) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    env = {**ledger.env(), "TASKQUEUE_WORKERS__LEASE_SECONDS": "2"}
    skewed = masters(redis_url, "-w", "1", "--max-concurrent-tasks", "6",
                     env={**env, **ledger.env(skew), **faketime_env(skew)},
                     imports=TASKS)  # fmt: skip
    (skewed_pid,) = skewed.wait_workers(1, timeout=60)
    tq = TaskQueue(redis_url)
    # The skewed host alone takes the first jobs: long ones that outlive several leases.
    long = [tq.enqueue_with("ledger.sleep", (4.0, i)) for i in range(3)]
    wait_for(lambda: len(ledger.runs()) == 3, 60, "the skewed host to start the long jobs")
    true = masters(redis_url, "-w", "1", "--max-concurrent-tasks", "6", env=env, imports=TASKS)
    true.wait_workers(1, timeout=60)
    delayed = [tq.enqueue_with("ledger.noop", (i,), delay=2.0) for i in range(4)]
    flaky = tq.enqueue_with(tasks_faults.flaky, (1,), max_retries=2)
    wait_for(lambda: all(tq.status(j).state == "succeeded" for j in long + delayed), 90,
             "long and delayed jobs to finish")  # fmt: skip
    runs = ledger.runs()
    assert all(len(runs[j]) == 1 for j in long), "a lease was stolen from the skewed host"
    for j in delayed:
        rec = tq.redis.hmget(tq.keys.job(j), "due_ms", "started_ms")
        due, started = (int(x) for x in rec)
        assert started >= due, f"delayed job {j} started before it was due (Redis time)"
    wait_for(lambda: tq.status(flaky).state == "dead", 60, "the failing job's retries")
    assert tq.status(flaky).failures == 3
    # Kill the skewed worker in the middle of new long jobs: a true host recovers them after one
    # lease (2 s, Redis time), not after an hour. The true host is stopped while the new jobs are
    # handed out, so that the skewed worker surely holds them (an idle true host could take all).
    assert true.stop(timeout=60) == 0
    # Expiry follows Redis time on the skewed host: a job due after its deadline ends expired
    # unrun (an hour behind would run it), one with two minutes to go runs (an hour ahead
    # would expire it).
    stale = tq.enqueue_with("ledger.noop", (98,), delay=1.0, expires=0.5)
    fresh = tq.enqueue_with("ledger.noop", (99,), expires=120)
    wait_for(lambda: tq.status(stale).state == "expired" and tq.status(fresh).state == "succeeded",
             60, "the skewed host to expire one job and run the other")  # fmt: skip
    assert stale not in ledger.runs()
    more = [tq.enqueue_with("ledger.sleep", (3.0, i)) for i in range(4)]

    def skewed_runs_all() -> bool:
        runs = ledger.runs()
        return all(j in runs and runs[j][-1].pid == skewed_pid for j in more)

    wait_for(skewed_runs_all, 60, "the skewed worker to start the new jobs")
    ledger.fault("sigkill", pid=skewed_pid)
    os.kill(skewed_pid, signal.SIGKILL)
    true = masters(redis_url, "-w", "1", "--max-concurrent-tasks", "6", env=env, imports=TASKS)
    wait_for(lambda: all(tq.status(j).state == "succeeded" for j in more), 90,
             "the killed worker's jobs to be recovered and run")  # fmt: skip
    check_ledger(tq.redis, long + delayed + [flaky, fresh] + more, ledger)
    assert true.stop(timeout=60) == 0
    skewed.stop(timeout=60)
