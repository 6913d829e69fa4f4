"""Periodic schedules without a master: the misfire plan, config entries, code declarations and
the schedule scripts on a real Redis, driven by in-process keepers."""

from __future__ import annotations

import time
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest
import redis

from taskqueue import Task, task
from taskqueue.config import TaskQueueConfig
from taskqueue.errors import ConfigError
from taskqueue.keys import Keys
from taskqueue.master.periodic import MAX_SLEEP, PeriodicKeeper
from taskqueue.master.redisguard import RedisGuard
from taskqueue.registry import Registry, registry
from taskqueue.schedules import Every, ScheduleRegistry, periodic
from taskqueue.schedules.admin import NoSuchSchedule, ScheduleAdmin, list_schedules
from taskqueue.schedules.calls import ScheduleCalls
from taskqueue.schedules.collect import collect
from taskqueue.schedules.plan import Step, plan

KEYS = Keys()


# -- the plan (pure) ---------------------------------------------------------------------------
def test_plan_fires_each_on_time_slot_on_its_own() -> None:
    assert plan(Every(1000), 10_000, 12_500, 5000, "skip") == [
        Step(10_000, 10_000, 0, 11_000), Step(11_000, 11_000, 0, 12_000),
        Step(12_000, 12_000, 0, 13_000),
    ]  # fmt: skip


def test_plan_misfire_skip_and_run_once() -> None:
    # Down from 10 s to 30.5 s, grace 2 s: slots 10..28 missed, 29 and 30 on time.
    skip = plan(Every(1000), 10_000, 30_500, 2000, "skip")
    assert skip[0] == Step(10_000, None, 19, 29_000)
    assert [s.fire for s in skip[1:]] == [29_000, 30_000]
    once = plan(Every(1000), 10_000, 30_500, 2000, "run_once")
    assert once[0] == Step(10_000, 10_000, 19, 29_000)
    assert [s.fire for s in once[1:]] == [29_000, 30_000]


def test_plan_nothing_before_the_slot() -> None:
    assert plan(Every(1000), 10_000, 9_999, 2000, "skip") == []


# -- declaring ---------------------------------------------------------------------------------
def test_periodic_above_task_registers_a_schedule() -> None:
    tasks, code = Registry(), ScheduleRegistry()

    @periodic(every=timedelta(seconds=30), args=(1,), queue="low_priority", registry=code)
    @task(name="t.beat", registry=tasks)
    def beat(n: int) -> int:
        return n

    assert beat(3) == 3  # still the task
    [s] = code.all()
    assert (s.name, s.task, s.spec, s.args, s.queue) == ("t.beat", "t.beat", Every(30_000), (1,),
                                                         "low_priority")  # fmt: skip
    rec = collect([], 1 << 20, tasks, code)["t.beat"]
    assert rec["queue"] == "low_priority" and rec["kind"] == "every" and rec["digest"]


def test_periodic_on_a_task_class() -> None:
    code = ScheduleRegistry()

    @periodic(cron="0 * * * *", tz="Asia/Tokyo", misfire="skip", registry=code)
    class Hourly(Task):
        name = "t.hourly"

        def run(self) -> None: ...

    [s] = code.all()
    assert (s.name, s.task, s.spec.describe(), s.misfire) == (
        "t.hourly", "t.hourly", "cron '0 * * * *' Asia/Tokyo", "skip")  # fmt: skip
    registry.remove("t.hourly")


def test_periodic_below_task_is_refused() -> None:
    with pytest.raises(TypeError, match="put @periodic above @task"):
        periodic(cron="* * * * *", registry=ScheduleRegistry())(lambda: None)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "tq.toml"
    path.write_text(text)
    return str(path)


def test_config_schedules_load_with_their_defaults(tmp_path: Path) -> None:
    cfg = TaskQueueConfig.from_file(write(tmp_path, """
[[schedules]]
task = "reports.nightly"
cron = "30 2 * * *"
tz = "Europe/Paris"
misfire = "skip"

[[schedules]]
name = "beat"
task = "t.beat"
every = 30
args = [1, "x"]
kwargs = {flag = true}
"""))  # fmt: skip
    first, second = cfg.schedules
    assert (first["name"], first["misfire"], first["queue"]) == ("reports.nightly", "skip", None)
    assert (second["every"], second["args"], second["kwargs"]) == (30.0, [1, "x"], {"flag": True})


def test_config_schedules_in_yaml(tmp_path: Path) -> None:
    path = tmp_path / "tq.yaml"
    path.write_text("schedules:\n  - task: t.beat\n    every: 5\n    args: [1]\n")
    [entry] = TaskQueueConfig.from_file(path).schedules
    assert (entry["name"], entry["every"], entry["args"]) == ("t.beat", 5.0, [1])
    path.write_text("schedules:\n  task: t.beat\n")
    with pytest.raises(ConfigError, match="schedules must be an array of tables"):
        TaskQueueConfig.from_file(path)


def test_config_schedule_errors_name_the_entry_and_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, """
[[schedules]]
task = "a"
every = 5
tz = "UTC"

[[schedules]]
tsk = "a"

[[schedules]]
task = "a"
cron = "0 25 * * *"
""")  # fmt: skip
    with pytest.raises(ConfigError) as err:
        TaskQueueConfig.from_file(path)
    msg = str(err.value)
    assert f"{path}: schedules[0]: tz applies to cron schedules only" in msg
    assert f"{path}: schedules[1]: unknown key 'tsk'; did you mean 'task'?" in msg
    assert f"{path}: schedules[2]: cron = '0 25 * * *' is invalid" in msg


def test_a_schedule_naming_an_unknown_task_is_refused(tmp_path: Path) -> None:
    tasks = Registry()
    task(name="reports.nightly", registry=tasks)(lambda: None)
    path = write(tmp_path, '[[schedules]]\ntask = "reports.nighty"\ncron = "0 3 * * *"\n')
    cfg = TaskQueueConfig.from_file(path)
    with pytest.raises(ConfigError) as err:
        collect(cfg.schedules, 1 << 20, tasks, ScheduleRegistry())
    assert str(err.value).startswith(
        f"{path}: schedules[0]: schedule 'reports.nighty' names unknown task 'reports.nighty'; "
        "did you mean 'reports.nightly'?"
    )


def test_a_name_declared_in_code_and_config_is_refused() -> None:
    tasks, code = Registry(), ScheduleRegistry()
    periodic(every=5, name="dup", registry=code)(task(name="t.a", registry=tasks)(lambda: None))
    entry = {"name": "dup", "task": "t.a", "every": 5.0, "where": "x.toml: schedules[0]"}
    with pytest.raises(ConfigError, match="schedule name 'dup' is also declared by @periodic"):
        collect([entry], 1 << 20, tasks, code)


# -- the scripts, through in-process keepers -------------------------------------------------
def records(*specs: tuple[str, dict]) -> dict:
    tasks, code = Registry(), ScheduleRegistry()
    task(name="t.tick", registry=tasks)(lambda: None)
    for name, kw in specs:
        periodic(name=name, registry=code, **kw)(tasks.get("t.tick") and _fn(tasks))
    return collect([], 1 << 20, tasks, code)


def _fn(tasks: Registry):
    from taskqueue.task import TaskFunction

    spec = tasks.get("t.tick")
    return TaskFunction(spec.func, spec)


def keeper(url: str, recs: dict, grace: float = 60.0) -> PeriodicKeeper:
    return PeriodicKeeper(RedisGuard(url), KEYS, recs, grace)


def jobs(r: redis.Redis) -> list[dict[str, str]]:
    out = []
    for key in r.scan_iter(match=KEYS.base + "job:*"):
        rec = {k.decode(): v.decode() for k, v in r.hgetall(key).items() if k != b"payload"}
        if "schedule" in rec:
            out.append(rec)
    return out


def run_for(keepers: list[PeriodicKeeper], seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for k in keepers:
            k.tick(time.monotonic())
        wake = min([end] + [k.next_due() for k in keepers])
        time.sleep(max(0.0, wake - time.monotonic()))


@pytest.mark.slow
def test_two_schedulers_fire_every_slot_exactly_once(redis_url: str) -> None:
    recs = records(("tick", {"every": 1}))
    ks = [keeper(redis_url, recs), keeper(redis_url, recs)]
    run_for(ks, 3.5)
    r = redis.Redis.from_url(redis_url)
    slots = sorted(int(j["slot_ms"]) for j in jobs(r))
    assert len(slots) >= 3 and len(set(slots)) == len(slots), slots
    assert all(b - a == 1000 for a, b in pairwise(slots)), slots
    assert all(j["key"].endswith(f"idem:schedule:tick:{j['slot_ms']}") for j in jobs(r))
    assert sum(k.fired for k in ks) == len(slots)


def set_next(r: redis.Redis, name: str, next_ms: int) -> None:
    """Pretend every scheduler was down since ``next_ms``."""
    r.hset(KEYS.schedule(name), "next_ms", next_ms)
    r.zadd(KEYS.due, {name: next_ms})


def redis_ms(r: redis.Redis) -> int:
    secs, micros = r.time()
    return secs * 1000 + micros // 1000


@pytest.mark.parametrize("policy", ["skip", "run_once"])
def test_misfire_after_an_outage(redis_url: str, policy: str) -> None:
    recs = records(("tick", {"every": 1, "misfire": policy}))
    k = keeper(redis_url, recs, grace=2.0)
    k.tick(time.monotonic())  # sync
    r = redis.Redis.from_url(redis_url)
    for j in jobs(r):
        r.delete(KEYS.job(j["id"]))
    down_since = (redis_ms(r) // 1000 - 10) * 1000
    set_next(r, "tick", down_since)
    k.wake()
    k.tick(time.monotonic())
    got = sorted(jobs(r), key=lambda j: int(j["slot_ms"]))
    catch_up = [j for j in got if j["missed"] != "0"]
    on_time = [j for j in got if j["missed"] == "0"]
    assert all(int(j["slot_ms"]) >= down_since + 7000 for j in on_time)
    assert 1 <= len(on_time) <= 4
    state = r.hgetall(KEYS.schedule("tick"))
    if policy == "skip":
        assert catch_up == [] and int(state[b"skipped"]) >= 7
    else:
        [c] = catch_up
        assert int(c["slot_ms"]) == down_since and int(c["missed"]) >= 7
    assert int(state[b"next_ms"]) > redis_ms(r) - 1000


@pytest.mark.cluster
def test_a_keeper_fires_on_every_topology(redis_url: str) -> None:
    """The scheduler's reads (Redis time, the due set) and its scripts run on Redis Cluster too."""
    k = keeper(redis_url, records(("tick", {"every": 1})))
    end = time.monotonic() + 60
    while k.fired < 2 and time.monotonic() < end:
        run_for([k], 0.5)
    assert k.fired >= 2
    [row] = list_schedules(k.redis.client, KEYS)
    assert row["last_job"] and row["last_outcome"] == "queued"


def test_sync_keeps_state_updates_changes_and_removes_the_rest(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    k = keeper(redis_url, records(("a", {"every": 60}), ("b", {"cron": "0 3 * * *"})))
    k.tick(time.monotonic())
    assert {n.decode() for n in r.smembers(KEYS.schedules)} == {"a", "b"}
    ScheduleAdmin(r, KEYS).pause("a")
    again = keeper(redis_url, records(("a", {"every": 120})))
    again.tick(time.monotonic())
    assert {n.decode() for n in r.smembers(KEYS.schedules)} == {"a"}
    assert not r.exists(KEYS.schedule("b")) and r.zscore(KEYS.due, "b") is None
    assert r.hget(KEYS.schedule("a"), "every_ms") == b"120000"
    assert r.hget(KEYS.schedule("a"), "paused") == b"1"  # a pause outlives a redefinition


@pytest.mark.slow
def test_pause_resume_run_now_and_the_listing(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    k = keeper(redis_url, records(("tick", {"every": 1})))
    admin = ScheduleAdmin(r, KEYS)
    run_for([k], 1.5)
    assert admin.pause("tick") is True and admin.pause("tick") is False
    before = len(jobs(r))
    run_for([k], 2.2)
    assert len(jobs(r)) == before, "a paused schedule fired"
    job_id = admin.run_now("tick")
    assert r.hget(KEYS.job(job_id), "manual") == b"1"
    [row] = list_schedules(r, KEYS)
    assert row["paused"] and row["next_at"] is None and row["last_job"] == job_id
    assert row["last_outcome"] == "queued" and row["when"] == "every 1s"
    assert admin.resume("tick") is True and admin.resume("tick") is False
    [row] = list_schedules(r, KEYS)
    assert not row["paused"] and row["next_at"] is not None and row["next_in_s"] <= 1.0
    k.wake()  # what the nudge to every master does
    run_for([k], 2.2)
    assert len(jobs(r)) >= before + 2
    with pytest.raises(NoSuchSchedule, match="no schedule 'nope'.*known: tick"):
        admin.pause("nope")


def test_fire_refuses_a_stale_definition_and_an_early_slot(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    recs = records(("tick", {"every": 3600}))
    k = keeper(redis_url, recs)
    k.tick(time.monotonic())
    calls = ScheduleCalls(KEYS)
    nxt = int(r.hget(KEYS.schedule("tick"), "next_ms"))
    step = Step(nxt, nxt, 0, nxt + 3_600_000)
    assert k.redis.run(calls.fire("tick", "wrong", "default", step)).status == "stale"
    fired = k.redis.run(calls.fire("tick", recs["tick"]["digest"], "default", step))
    assert (fired.status, fired.earliest_ms) == ("early", nxt)
    # An idle scheduler sleeps until the slot (at most MAX_SLEEP): slots sit on the hour, so near
    # an hour boundary the slot is closer than MAX_SLEEP.
    secs, micros = r.time()
    until_slot = (nxt - (secs * 1000 + micros // 1000)) / 1000
    assert k.next_due() - time.monotonic() > min(MAX_SLEEP, until_slot) - 10
    assert jobs(r) == []
