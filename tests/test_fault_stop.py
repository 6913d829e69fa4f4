"""Graceful stop through the execution ledger (docs/reliability.md, row 4): a master started by
a shell wrapper that ``exec``s it, a second TERM during the grace period, and a grace too short
for the running jobs. Jobs a stop puts back run on the next master; every run is accounted for.
"""

from __future__ import annotations

import signal

import pytest

from taskqueue import TaskQueue
from taskqueue.testing import wait_for
from taskqueue.testing.ledger import Ledger, check_ledger
from tests import tasks_faults  # noqa: F401 - registers the ledger tasks

TASKS = "tests.tasks_faults"
#: What deploy tools write in front of a process; without ``exec`` the shell keeps the PID and
#: the TERM meant for the master never reaches it (sidekiq#6711).
WRAPPER = 'echo "starting $1"; exec "$@"'

pytestmark = pytest.mark.slow


def states(tq: TaskQueue, ids: list[str]) -> list[str]:
    return [tq.status(i).state for i in ids]


def test_term_through_an_exec_wrapper_and_a_second_term_let_running_jobs_finish(
    redis_url, masters, tmp_path
) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    flags = ("-w", "2", "--max-concurrent-tasks", "2", "--graceful-timeout", "60")
    m = masters(redis_url, *flags, env=ledger.env(), imports=TASKS, wrapper=WRAPPER)
    m.wait_workers(2, timeout=60)  # the status record is found under the wrapper's PID: exec
    tq = TaskQueue(redis_url)
    ids = [tq.enqueue_with("ledger.sleep", (4.0, i)) for i in range(8)]
    wait_for(lambda: len(ledger.runs()) == 4, 30, "4 jobs running")
    m.send(signal.SIGTERM)
    m.wait_log("graceful stop (SIGTERM)")
    m.send(signal.SIGTERM)  # a second TERM keeps the stop graceful: the grace is not cut short
    assert m.wait(60) == 0
    st = states(tq, ids)
    assert st.count("succeeded") == 4 and st.count("queued") == 4, st
    nxt = masters(redis_url, *flags, env=ledger.env(), imports=TASKS)
    wait_for(lambda: all(s == "succeeded" for s in states(tq, ids)), 60, "the rest to run")
    report = check_ledger(tq.redis, ids, ledger)
    assert report.runs == 8 and not report.excused  # no fault recorded: nothing ran twice
    assert nxt.stop() == 0
    tq.close()


def test_a_grace_too_short_puts_running_jobs_back_and_they_run_again_elsewhere(
    redis_url, masters, tmp_path
) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    flags = ("-w", "1", "--max-concurrent-tasks", "3")
    m = masters(redis_url, *flags, "--graceful-timeout", "0.5", env=ledger.env(), imports=TASKS)
    m.wait_workers(1, timeout=60)
    tq = TaskQueue(redis_url)
    ids = [tq.enqueue_with("ledger.sleep", (3.0, i)) for i in range(3)]
    wait_for(lambda: len(ledger.runs()) == 3, 30, "3 jobs running")
    ledger.fault("sigterm, 0.5 s grace", pid=None)
    m.send(signal.SIGTERM)
    assert m.wait(30) == 0
    assert states(tq, ids) == ["queued"] * 3
    assert all(tq.redis.hget(tq.keys.job(i), "attempts") == b"0" for i in ids)  # none spent
    nxt = masters(redis_url, *flags, env=ledger.env(), imports=TASKS)
    wait_for(lambda: all(s == "succeeded" for s in states(tq, ids)), 60, "the jobs to run again")
    report = check_ledger(tq.redis, ids, ledger)
    assert report.runs == 6 and len(report.excused) == 3  # each cut run, excused by the stop
    assert nxt.stop() == 0
    tq.close()
