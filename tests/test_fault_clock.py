"""Clock skew: a master and its workers whose clocks are an hour off (libfaketime, Debian's
`faketime` package) still follow Redis time for delays, retries and leases.

Beside the skewed host runs a host with a true clock, sharing the queue. If the skewed host
computed leases with its own clock, an hour behind would hand the other host its running jobs
(duplicates the ledger refuses) and an hour ahead would keep a killed worker's jobs leased for an
hour (the wait for recovery below would time out); the lease deadlines are also read beside Redis
`TIME`. Then the skewed host runs alone: delays are checked on the job records, which hold Redis
time; expiry is checked both ways; each retry of a failing job is due within its backoff of the
failure (Redis time, the scheduled set's score), and starts no sooner than that.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from taskqueue import TaskQueue
from taskqueue.backoff import bounds_ms
from taskqueue.testing import wait_for
from taskqueue.testing.ledger import Ledger, check_ledger
from tests import tasks_faults

TASKS = "tests.tasks_faults"
LIBFAKETIME = [
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
    Path("/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"),
    Path("/usr/lib/faketime/libfaketime.so.1"),
]
LEASE_MS = 2000
#: How late a retry may start after its backoff's ceiling (a loaded machine), far below an hour.
LATE_MS = 30_000


def faketime_env(offset_s: int) -> dict[str, str]:
    lib = next((p for p in LIBFAKETIME if p.exists()), None)
    if lib is None:
        pytest.skip("libfaketime is not installed (Debian package `faketime`; .ci/run installs it)")
    return {"LD_PRELOAD": str(lib), "FAKETIME": f"{offset_s:+d}", "FAKETIME_DONT_RESET": "1"}


def lease_offsets(tq: TaskQueue, ids: list[str]) -> list[float]:
    """Each job's lease deadline (its score in the active set) minus Redis `TIME`, in ms."""
    pipe = tq.redis.pipeline(transaction=True)
    pipe.time()
    for j in ids:
        pipe.zscore(tq.keys.active("default"), j)
    (secs, micros), *deadlines = pipe.execute()
    now_ms = secs * 1000 + micros // 1000
    return [d - now_ms if d is not None else float("nan") for d in deadlines]


def follow_retries(
    tq: TaskQueue, job: str, limits: dict[int, tuple[int, int]]
) -> dict[int, tuple[int, float]]:
    """Watch a failing job until it is dead. While it waits for retry k, note its due time minus
    the time of failure k (both Redis time, from one MULTI): ``{k: (due_ms - at, score - at)}``.
    Stops early at a due time outside its bounds (an hour ahead would wait an hour)."""
    seen: dict[int, tuple[int, float]] = {}

    def done() -> bool:
        pipe = tq.redis.pipeline(transaction=True)
        pipe.hmget(tq.keys.job(job), "state", "failures", "due_ms", "history")
        pipe.zscore(tq.keys.scheduled("default"), job)
        (state, failures, due, history), score = pipe.execute()
        if state == b"scheduled":
            k, at = int(failures), json.loads(history)[-1]["at_ms"]
            seen[k] = (int(due) - at, (float("nan") if score is None else score) - at)
            if not limits[k][0] <= seen[k][0] <= limits[k][1]:
                return True
        return state == b"dead"

    wait_for(done, 60, "the failing job's retries")
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("skew", [-3600, 3600], ids=["an hour behind", "an hour ahead"])
def test_a_skewed_host_follows_redis_time(redis_url, masters, tmp_path, skew) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    env = {**ledger.env(), "TASKQUEUE_WORKERS__LEASE_SECONDS": str(LEASE_MS // 1000)}
    skewed = masters(redis_url, "-w", "1", "--max-concurrent-tasks", "6",
                     env={**env, **ledger.env(skew), **faketime_env(skew)},
                     imports=TASKS)  # fmt: skip
    (skewed_pid,) = skewed.wait_workers(1, timeout=60)
    tq = TaskQueue(redis_url)
    # The skewed host alone takes the first jobs: long ones that outlive several leases.
    long = [tq.enqueue_with("ledger.sleep", (4.0, i)) for i in range(3)]
    wait_for(lambda: len(ledger.runs()) == 3, 60, "the skewed host to start the long jobs")
    # Their deadlines, set by the skewed host's fetch and extends, lie within one lease of Redis
    # time (an hour off either way otherwise).
    offsets = lease_offsets(tq, long)
    assert all(-LEASE_MS < d <= LEASE_MS for d in offsets), (
        f"lease deadlines minus Redis TIME: {offsets} ms, not within one lease ({LEASE_MS} ms)"
    )
    true = masters(redis_url, "-w", "1", "--max-concurrent-tasks", "6", env=env, imports=TASKS)
    true.wait_workers(1, timeout=60)
    wait_for(lambda: all(tq.status(j).state == "succeeded" for j in long), 90,
             "the long jobs to finish")  # fmt: skip
    runs = ledger.runs()
    assert all(len(runs[j]) == 1 for j in long), "a lease was stolen from the skewed host"
    # From here on the skewed host runs alone: the true host is stopped. (Below, it is also
    # stopped while new long jobs are handed out, so that the skewed worker surely holds them
    # when it is killed: an idle true host could take them all.)
    assert true.stop(timeout=60) == 0
    delayed = [tq.enqueue_with("ledger.noop", (i,), delay=2.0) for i in range(4)]
    flaky = tq.enqueue_with(tasks_faults.flaky, (1,), max_retries=2)
    opts = tasks_faults.flaky.spec.options
    limits = {k: bounds_ms(k, opts.retry_backoff, opts.retry_backoff_max) for k in (1, 2)}
    seen = follow_retries(tq, flaky, limits)
    wait_for(lambda: all(tq.status(j).state == "succeeded" for j in delayed), 60,
             "the delayed jobs to finish")  # fmt: skip
    runs = ledger.runs()
    for j in delayed:
        due, started = (int(x) for x in tq.redis.hmget(tq.keys.job(j), "due_ms", "started_ms"))
        assert started >= due, f"delayed job {j} started before it was due (Redis time)"
        assert [r.pid for r in runs[j]] == [skewed_pid], f"delayed job {j} ran elsewhere"
    # Retries: each is due within its backoff of the failure, on the skewed host, in Redis time.
    for k, (due_gap, score_gap) in seen.items():
        lo, hi = limits[k]
        assert lo <= due_gap <= hi, (
            f"retry {k} due {due_gap} ms after failure {k} (Redis time): outside {lo}-{hi} ms"
        )
        assert score_gap == due_gap, f"retry {k}: scheduled score differs from due_ms"
    assert tq.status(flaky).failures == 3
    rec = tq.redis.hmget(tq.keys.job(flaky), "history", "due_ms", "started_ms")
    failed_at = [h["at_ms"] for h in json.loads(rec[0])]
    due, started = int(rec[1]), int(rec[2])  # the last retry's due time and start
    lo, hi = limits[2]
    assert lo <= due - failed_at[1] <= hi, (
        f"retry 2 due {due - failed_at[1]} ms after failure 2 (Redis time): outside {lo}-{hi} ms"
    )
    assert started >= due, "the last retry started before it was due (Redis time)"
    attempts = runs[flaky]
    assert [r.pid for r in attempts] == [skewed_pid] * 3, "an attempt ran off the skewed host"
    # Each retry's start (ledger time, corrected for the skew) after the failure before it: no
    # sooner than the backoff allows (2 ms: Redis rounds its ms down), and not an hour late.
    gaps = [round(attempts[k].started * 1000) - failed_at[k - 1] for k in (1, 2)]
    for k, gap in enumerate(gaps, 1):
        lo, hi = limits[k]
        assert lo - 2 <= gap <= hi + LATE_MS, (
            f"retry {k} started {gap} ms after failure {k} (Redis time): backoff {lo}-{hi} ms"
        )
    dues = "/".join(str(seen[k][0]) if k in seen else "?" for k in (1, 2))
    print(f"\nskew {skew:+d} s: retries due {dues} ms after their failures (bounds "
          f"{limits[1]}/{limits[2]}; ? = not seen waiting), started "
          f"{'/'.join(map(str, gaps))} ms after; lease deadlines "
          f"{min(offsets):.0f}-{max(offsets):.0f} ms past Redis TIME")  # fmt: skip
    # Expiry follows Redis time on the skewed host: a job due after its deadline ends expired
    # unrun (an hour behind would run it), one with two minutes to go runs (an hour ahead
    # would expire it).
    stale = tq.enqueue_with("ledger.noop", (98,), delay=1.0, expires=0.5)
    fresh = tq.enqueue_with("ledger.noop", (99,), expires=120)
    wait_for(lambda: tq.status(stale).state == "expired" and tq.status(fresh).state == "succeeded",
             60, "the skewed host to expire one job and run the other")  # fmt: skip
    assert stale not in ledger.runs()
    # Kill the skewed worker in the middle of new long jobs: a true host recovers them after one
    # lease (2 s, Redis time), not after an hour.
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


@pytest.mark.slow
def test_a_master_an_hour_behind_is_still_listed(redis_url, masters) -> None:
    """The masters index is scored and pruned in Redis time: a master whose clock is an hour
    behind is listed by tqctl and the metrics like any other, not pruned as a minute stale."""
    from taskqueue.control.client import ControlClient
    from taskqueue.metrics.reader import read_raw

    m = masters(redis_url, "-w", "1", env=faketime_env(-3600))
    m.wait_workers(1)
    tq = TaskQueue(redis_url)
    control = ControlClient(tq.redis, tq.keys)
    wait_for(lambda: control.masters(), 30, "the skewed master in the index")
    for _ in range(3):  # each read also prunes the index: the master survives its own pruning
        (listed,) = control.masters()
        assert listed["pid"] == m.proc.pid
    assert [r["pid"] for r in read_raw(tq.redis, tq.keys).masters] == [m.proc.pid]
    assert m.stop() == 0
    tq.close()
