"""Periodic schedules fired by real masters (``--enable-scheduler``): exactly once per slot with
three masters, both misfire policies after every master was down, pause/resume/run-now through
tqctl, and a schedule naming an unknown task refused at start. Counted on the job records."""

from __future__ import annotations

import json
import signal
import time
from itertools import pairwise
from pathlib import Path

import pytest
import redis

from taskqueue.cli import tqctl
from taskqueue.keys import Keys
from taskqueue.testing import wait_for

KEYS = Keys()
TASKS = "tests.tasks_periodic"  # declares code.tick: p.tick every second


def scheduled_jobs(r: redis.Redis, schedule: str) -> list[dict[str, str]]:
    """The job records a schedule created, oldest slot first."""
    out = []
    for key in r.scan_iter(match=KEYS.base + "job:*", count=1000):
        rec = {k.decode(): v.decode() for k, v in r.hgetall(key).items() if k != b"payload"}
        if rec.get("schedule") == schedule:
            out.append(rec)
    return sorted(out, key=lambda j: int(j["slot_ms"]))


def redis_s(r: redis.Redis) -> float:
    secs, micros = r.time()
    return secs + micros / 1e6


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "periodic.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.slow
def test_three_masters_fire_each_slot_of_an_every_second_schedule_exactly_once(
    redis_url: str, masters
) -> None:
    r = redis.Redis.from_url(redis_url)
    ms = [masters(redis_url, "-s", "-w", "1", "--log-level", "DEBUG", imports=TASKS)
          for _ in range(3)]  # fmt: skip
    for m in ms:
        m.wait_workers(1, timeout=60)
    start = redis_s(r)
    wait_for(lambda: redis_s(r) >= start + 40, 120, "40 s of Redis time")
    for m in ms:
        assert m.stop() == 0
    slots = [int(j["slot_ms"]) for j in scheduled_jobs(r, "code.tick")]
    assert len(slots) >= 40, f"only {len(slots)} slots fired in 40 s"
    assert len(set(slots)) == len(slots), "a slot fired twice"
    gaps = [b - a for a, b in pairwise(slots)]
    assert set(gaps) == {1000}, f"missing slots: gaps {sorted(set(gaps))}"
    fired = sum(m.log().count("schedule code.tick fired job") for m in ms)
    assert fired == len(slots), f"masters logged {fired} firings for {len(slots)} jobs"
    states = {j["state"] for j in scheduled_jobs(r, "code.tick")}
    assert states <= {"succeeded", "queued"}, states


@pytest.mark.slow
def test_misfire_policies_after_every_master_was_down_for_10_seconds(
    redis_url: str, masters, tmp_path: Path
) -> None:
    path = config(tmp_path, """
[scheduler]
misfire_grace = 2

[[schedules]]
name = "skip.tick"
task = "p.tick"
every = 1
misfire = "skip"

[[schedules]]
name = "once.tick"
task = "p.tick"
every = 1
misfire = "run_once"
""")  # fmt: skip
    r = redis.Redis.from_url(redis_url)
    flags = ("-s", "-c", path, "-w", "1")

    def run_until_fired(after_s: float) -> None:
        ms = [masters(redis_url, *flags, imports=TASKS) for _ in range(2)]
        for m in ms:
            m.wait_workers(1, timeout=60)
        for name in ("skip.tick", "once.tick"):
            wait_for(lambda n=name: any(int(j["slot_ms"]) > after_s * 1000 + 2000
                                        for j in scheduled_jobs(r, n)),
                     90, f"{name} firing")  # fmt: skip
        for m in ms:
            assert m.stop() == 0

    run_until_fired(redis_s(r))
    down = redis_s(r)
    wait_for(lambda: redis_s(r) >= down + 10, 30, "a 10 s outage")  # no master runs meanwhile
    run_until_fired(redis_s(r))

    skip = scheduled_jobs(r, "skip.tick")
    skip_slots = [int(j["slot_ms"]) for j in skip]
    assert len(set(skip_slots)) == len(skip_slots), "a slot fired twice"
    assert all(j["missed"] == "0" for j in skip), "skip fired a catch-up job"
    assert max(b - a for a, b in pairwise(skip_slots)) >= 8000, "the outage's slots fired"
    assert int(r.hget(KEYS.schedule("skip.tick"), "skipped")) >= 7

    once = scheduled_jobs(r, "once.tick")
    catch_up = [j for j in once if int(j["missed"]) >= 7]
    assert len(catch_up) == 1, f"{len(catch_up)} catch-up jobs for one outage"
    for a, b in pairwise(once):  # every slot accounted for once: fired, or in a catch-up job
        covered = max(1, int(a["missed"])) * 1000
        assert int(b["slot_ms"]) - int(a["slot_ms"]) == covered, (a, b)
    assert catch_up[0]["state"] == "succeeded"


def ctl(capsys, url: str, *args: str) -> str:
    assert tqctl.main(["-r", url, *args]) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_pause_resume_and_run_now_through_tqctl(redis_url: str, masters, capsys) -> None:
    r = redis.Redis.from_url(redis_url)
    m = masters(redis_url, "-s", "-w", "1", imports=TASKS)
    m.wait_workers(1, timeout=60)
    wait_for(lambda: len(scheduled_jobs(r, "code.tick")) >= 2, 30, "code.tick firing")
    assert "schedule code.tick paused" in ctl(capsys, redis_url, "schedules", "pause", "code.tick")
    paused_at = len(scheduled_jobs(r, "code.tick"))
    time.sleep(3)  # three slots pass: none may fire
    assert len(scheduled_jobs(r, "code.tick")) == paused_at
    out = ctl(capsys, redis_url, "schedules", "run-now", "code.tick")
    job_id = out.split("job ")[1].split()[0]
    wait_for(lambda: r.hget(KEYS.job(job_id), "state") == b"succeeded", 30, "the run-now job")
    [row] = json.loads(ctl(capsys, redis_url, "schedules", "--json"))
    assert (row["name"], row["paused"], row["last_job"]) == ("code.tick", True, job_id)
    assert row["last_outcome"] == "succeeded"
    ctl(capsys, redis_url, "schedules", "resume", "code.tick")
    wait_for(lambda: len(scheduled_jobs(r, "code.tick")) >= paused_at + 3, 30, "firing again")
    listing = ctl(capsys, redis_url, "schedules")
    assert "code.tick" in listing and "active" in listing and "every 1s" in listing
    assert m.stop() == 0


def test_a_schedule_naming_an_unknown_task_is_refused_at_start(
    redis_url: str, masters, tmp_path: Path
) -> None:
    path = config(
        tmp_path, '[[schedules]]\nname = "nightly"\ntask = "p.reprot"\ncron = "0 3 * * *"\n'
    )
    m = masters(redis_url, "-s", "-c", path, imports=TASKS)
    assert m.wait(60) == 2
    assert (f"{path}: schedules[0]: schedule 'nightly' names unknown task 'p.reprot'; "
            "did you mean 'p.report'?") in m.log()  # fmt: skip
    assert not redis.Redis.from_url(redis_url).exists(KEYS.schedules)


@pytest.mark.slow
def test_an_idle_scheduler_sleeps_until_the_next_slot(redis_url: str, masters, tmp_path) -> None:
    """No polling for schedules: between two slots a scheduler sends Redis nothing about them
    (every command is watched with MONITOR)."""
    path = config(tmp_path, '[[schedules]]\nname = "yearly"\ntask = "m.noop"\ncron = "0 0 1 1 *"\n')
    m = masters(redis_url, "-s", "-c", path, "-w", "1", imports="tests.tasks_for_master")
    m.wait_log("scheduler: 1 schedule(s)", timeout=60)
    m.wait_workers(1, timeout=60)
    watcher = redis.Redis.from_url(redis_url)
    seen: list[str] = []
    with watcher.monitor() as mon:  # the master's status record arrives every 2 s at most
        end = time.monotonic() + 8
        while time.monotonic() < end:
            seen.append(str(mon.next_command()["command"]))
    about = [c for c in seen if "schedules" in c or "sched:" in c]
    assert seen, "MONITOR saw nothing at all: the test is broken"
    assert about == [], f"an idle scheduler touched the schedules: {about[:5]}"
    assert m.stop() == 0


@pytest.mark.slow
def test_tick_interval_paces_the_masters_promotion_of_delayed_jobs(redis_url, masters,
                                                                    tmp_path) -> None:  # fmt: skip
    """With its workers quiet (they promote nothing), a scheduler master alone moves due delayed
    jobs to their queue, every tick_interval."""
    from taskqueue import TaskQueue

    tq = TaskQueue(redis_url)
    for tick, promoted in ((0.2, True), (3600, False)):
        path = config(tmp_path, f"[scheduler]\ntick_interval = {tick}\n")
        m = masters(redis_url, "-s", "-c", path, "-w", "1", imports="tests.tasks_for_master")
        m.wait_workers(1, timeout=60)
        m.send(signal.SIGTSTP)
        m.wait_log("quiet: fetching stopped")
        time.sleep(0.5)  # the master's first promotion pass, at start, is behind us
        job = tq.enqueue_with("m.noop", (1,), delay=0.3, strict=False)
        if promoted:
            wait_for(lambda j=job: tq.status(j).state == "queued", 20, "the master's promotion")
        else:
            time.sleep(2)  # several times the delay: an hour-long tick has not come round
            assert tq.status(job).state == "scheduled"
        assert m.stop() == 0
        tq.cancel(job)
    tq.close()
