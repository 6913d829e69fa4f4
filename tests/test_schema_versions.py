"""Rolling deploys with two script versions: the namespace records its schema version, releases
that can share it run side by side, and an incompatible mix is refused loudly before any job is
touched (``taskqueue.schema``, ``schema_check.lua``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from taskqueue import TaskQueue
from taskqueue.schema import MIN_COMPATIBLE, SCHEMA_VERSION, check_call
from taskqueue.testing import wait_for
from taskqueue.testing.ledger import check_ledger


def check(tq: TaskQueue, version: int, min_compatible: int):
    return tq.run(check_call(tq.broker, version, min_compatible))


def stored(tq: TaskQueue) -> tuple[int, int]:
    v, m = tq.redis.hmget(tq.keys.schema, "version", "min_compatible")
    return int(v), int(m)


def test_versions_meet_only_when_each_can_share_with_the_other(tq: TaskQueue) -> None:
    assert check(tq, 1, 1).ok and stored(tq) == (1, 1)  # first one records itself
    assert check(tq, 2, 1).ok and stored(tq) == (2, 1)  # N+1 that can run beside N: raises it
    assert check(tq, 1, 1).ok and stored(tq) == (2, 1)  # N still starts beside N+1
    refused = check(tq, 3, 3)  # N+2 cannot share with data of schema 2
    assert not refused.ok and stored(tq) == (2, 1), "a refused check writes nothing"
    assert "drain the older release" in refused.refusal("default", 3, 3)
    tq.redis.hset(tq.keys.schema, mapping={"version": 3, "min_compatible": 3})
    old = check(tq, 1, 1)  # N after N+2 (which needs >= 3) ran here: refused
    assert not old.ok and "upgrade this host" in old.refusal("default", 1, 1)


def worker_cmd(url: str, *more: str) -> list[str]:
    return [sys.executable, "-m", "taskqueue.cli.worker", "worker", "-r", url, "-w", "1",
            "--import", "tests.tasks_for_master", *more]  # fmt: skip


@pytest.mark.slow
def test_an_incompatible_release_refuses_to_start_and_touches_no_job(redis_url) -> None:
    tq = TaskQueue(redis_url)
    job = tq.enqueue_with("m.noop", (1,), strict=False)
    newer = SCHEMA_VERSION + 1
    tq.redis.hset(tq.keys.schema, mapping={"version": newer, "min_compatible": newer,
                                           "by": "web2:77 taskqueue 9.0"})  # fmt: skip
    out = subprocess.run(worker_cmd(redis_url), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert f"data of schema {newer}" in out.stderr and "upgrade this host" in out.stderr
    st = tq.status(job)
    assert (st.state, st.attempts) == ("queued", 0), "the refused release touched a job"
    ctl = subprocess.run([sys.executable, "-m", "taskqueue.cli.tqctl", "-r", redis_url, "schema"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ctl.returncode == 1 and "NO: task-worker refuses" in ctl.stdout
    reset = subprocess.run([sys.executable, "-m", "taskqueue.cli.tqctl", "-r", redis_url,
                            "schema", "reset", "--yes"], capture_output=True, text=True)  # fmt: skip
    assert reset.returncode == 0 and not tq.redis.exists(tq.keys.schema)


@pytest.mark.slow
def test_a_compatible_newer_release_runs_beside_this_one(redis_url, masters, ledger) -> None:
    tq = TaskQueue(redis_url)
    newer = SCHEMA_VERSION + 1
    tq.redis.hset(tq.keys.schema, mapping={"version": newer, "min_compatible": MIN_COMPATIBLE})
    m = masters(redis_url, "-w", "1", env=ledger.env(), imports="tests.tasks_faults")
    m.wait_workers(1)
    job = tq.enqueue_with("ledger.noop", (1,), strict=False)
    wait_for(lambda: tq.status(job).state == "succeeded", 30, "the job to run")
    assert stored(tq) == (newer, MIN_COMPATIBLE), "an older release does not lower the record"
    assert m.stop() == 0
    report = check_ledger(tq.redis, [job], ledger, tq.keys)  # its result is from its one run
    assert report.runs == 1 and not report.excused
    tq.close()
