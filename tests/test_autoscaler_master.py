"""The autoscaler in real masters on a real Redis: a burst takes a pool from min to max and back,
two masters share one burst, pins through tqctl; the claim script; the recommendations."""

from __future__ import annotations

import json
import signal

import pytest
import redis

from taskqueue import TaskQueue
from taskqueue.autoscaler import get_scaling_recommendations
from taskqueue.broker import Broker
from taskqueue.cli.tqctl import main
from taskqueue.connection import connect
from taskqueue.keys import Keys
from taskqueue.runner import SyncRunner
from taskqueue.testing import check_ledger, wait_for
from taskqueue.testing.ledger_tasks import sleep as recorded_sleep
from tests.tasks_for_master import leak, noop, sleep

FAST = {
    "TASKQUEUE_AUTOSCALER__SAMPLE_INTERVAL": "0.3",
    "TASKQUEUE_AUTOSCALER__SCALING_TRIGGERS__SCALE_UP_COOLDOWN_SECONDS": "1",
    "TASKQUEUE_AUTOSCALER__SCALING_TRIGGERS__SCALE_DOWN_COOLDOWN_SECONDS": "1",
}


def ctl(capsys, url: str, *argv: str) -> tuple[int, str]:
    code = main(["-r", url, *argv])
    out = capsys.readouterr()
    return code, out.out + out.err


def auto(m) -> dict:
    st = m.status() or {}
    return {
        **(st.get("autoscaler") or {}),
        "desired": st.get("desired"),
        "actual": st.get("actual"),
    }


def last_reason(m) -> str:
    history = auto(m).get("history") or [{"reasons": [""]}]
    return history[-1]["reasons"][0]


def steps(url: str) -> list[dict]:
    r = connect(url)
    return [json.loads(x) for x in r.lrange(Keys().autoscaler_log, 0, -1)]


@pytest.mark.slow
@pytest.mark.cluster
def test_a_burst_takes_the_pool_from_min_to_max_and_back_with_every_job_run_once(
    redis_url, masters, ledger
) -> None:
    m = masters(redis_url, "-w", "0", "-a", "--autoscaler-min-workers", "1",
                "--autoscaler-max-workers", "4", "--autoscaler-consecutive-signals", "2",
                "--max-concurrent-tasks", "2", env={**FAST, **ledger.env()},
                imports="taskqueue.testing.ledger_tasks")  # fmt: skip
    m.wait_workers(1)  # initial_count = 0 with the autoscaler on starts at min_workers
    tq = TaskQueue(redis_url)
    ids = tq.enqueue_many([(recorded_sleep, (0.3, i)) for i in range(80)])
    ids += tq.enqueue_many([(recorded_sleep, (2.0, i)) for i in range(3)])  # a slow tail
    at_max = lambda: any(s["action"] == "up" and s["to"] == 4 for s in steps(redis_url))  # noqa: E731
    wait_for(at_max, 60, "a step to max_workers in the namespace's scaling log")
    wait_for(lambda: all(tq.status(i).state == "succeeded" for i in ids), 120, "every job done")
    m.wait_workers(1, timeout=60)
    report = check_ledger(tq.redis, ids, ledger)  # no fault injected: no second run excused
    assert report.runs == len(ids) and not report.excused, "every job ran exactly once"
    ups = [s for s in steps(redis_url) if s["action"] == "up"]
    downs = [s for s in steps(redis_url) if s["action"] == "down"]
    assert ups and max(s["to"] for s in ups) == 4 and all(s["to"] <= 4 for s in ups)
    assert downs and min(s["to"] for s in downs) == 1
    assert "scaling decision: scale_up" in m.log() and "scaling decision: scale_down" in m.log()
    assert "operation=scaling_decision" in m.log()
    assert "died" not in m.log() and "killed" not in m.log()
    assert m.stop() == 0


@pytest.mark.slow
def test_two_masters_share_one_burst(redis_url, masters) -> None:
    # long cooldowns: nothing but the burst's one step may happen while the test looks
    env = {**FAST, "TASKQUEUE_AUTOSCALER__SCALING_TRIGGERS__SCALE_UP_COOLDOWN_SECONDS": "600",
           "TASKQUEUE_AUTOSCALER__SCALING_TRIGGERS__SCALE_DOWN_COOLDOWN_SECONDS": "600"}  # fmt: skip
    flags = ("-w", "1", "-a", "--autoscaler-max-workers", "4", "--autoscaler-consecutive-signals", "1",
             "--max-concurrent-tasks", "2")  # fmt: skip
    a, b = masters(redis_url, *flags, env=env), masters(redis_url, *flags, env=env)
    a.wait_workers(1)
    b.wait_workers(1)
    tq = TaskQueue(redis_url)
    tq.enqueue_many([(sleep, (0.2, i)) for i in range(600)])
    grown = wait_for(lambda: [x for x in (a, b) if (auto(x)["desired"] or 0) > 1], 30, "a scale-up")
    winner = grown[0]
    other = b if winner is a else a

    def refused() -> bool:
        return any(h["outcome"].startswith("refused") for h in auto(other).get("history", []))

    wait_for(refused, 30, "the other master's refused claim")
    assert auto(other)["desired"] == 1, "the other master did not double too"
    assert auto(winner)["desired"] == 4
    ups = [s for s in steps(redis_url) if s["action"] == "up"]
    assert [s["master"] for s in ups] == [winner.id]
    tq.purge("default")


@pytest.mark.slow
def test_pin_and_unpin_through_tqctl(redis_url, masters, capsys, web) -> None:
    env = {**FAST, "TASKQUEUE_AUTOSCALER__SCALING_TRIGGERS__SCALE_DOWN_COOLDOWN_SECONDS": "0"}
    m = masters(redis_url, "-w", "1", "-a", "--autoscaler-max-workers", "5",
                "--autoscaler-consecutive-signals", "1", env=env)  # fmt: skip
    m.wait_workers(1)
    code, out = ctl(capsys, redis_url, "autoscaler", "pin", "4")
    assert code == 0 and "autoscaler paused at 4" in out
    m.wait_workers(4)
    m.wait_log("pinned at 4")  # the decision logged while pinned
    code, out = ctl(capsys, redis_url, "autoscaler")
    assert code == 0 and "PINNED at 4" in out and "METRIC" in out and "recommendations:" in out
    wait_for(lambda: "pinned" in last_reason(m), 10, "a pinned hold in the status record")
    assert auto(m)["desired"] == 4, "an idle pool stays pinned"
    code, out = ctl(capsys, redis_url, "autoscaler", "unpin")
    assert code == 0 and "unpinned (was pinned at 4)" in out
    m.wait_workers(1, timeout=30)  # idle: scaled down to min_workers
    # a manual scale and TTIN pin too
    code, out = ctl(capsys, redis_url, "scale", "2")
    assert code == 0
    m.wait_workers(2)
    assert auto(m)["pinned"] == 2
    m.send(signal.SIGTTIN)
    m.wait_workers(3)
    assert auto(m)["pinned"] == 3 and "SIGTTIN" in auto(m)["pinned_by"]
    code, out = ctl(capsys, redis_url, "autoscaler", "--json")
    data = json.loads(out)
    assert data["masters"][0]["autoscaler"]["pinned"] == 3
    code, out = ctl(capsys, redis_url, "autoscaler", "history")
    assert code == 0 and "down" in out
    # the HTTP API and Prometheus serve the state the master publishes
    srv = web(redis_url)
    state = srv.get("/tasks/metrics/autoscaler").json()["masters"][m.id]["state"]
    assert state["pinned"] == 3 and state["thresholds"]["queue_pressure"] == 0.75
    assert f'taskqueue_autoscaler_pinned_workers{{master="{m.id}"}} 3.0' in srv.get("/metrics").text
    ctl(capsys, redis_url, "autoscaler", "unpin")
    m.wait_workers(1, timeout=30)


@pytest.mark.slow
def test_memory_pressure_recycles_the_largest_worker_instead_of_scaling_up(
    redis_url, masters
) -> None:
    env = {**FAST, "TASKQUEUE_AUTOSCALER__SCALING_TRIGGERS__MEMORY_PRESSURE_THRESHOLD": "60"}
    m = masters(redis_url, "-w", "1", "-a", "--autoscaler-max-workers", "3", "--max-concurrent-tasks", "2",
                "--autoscaler-consecutive-signals", "1", env=env)  # fmt: skip
    (first,) = m.wait_workers(1)
    tq = TaskQueue(redis_url)
    ids = tq.enqueue_many([(leak, (100,))])  # the worker keeps 100 MiB: over the 60 MiB level
    wait_for(lambda: tq.status(ids[0]).state == "succeeded", 30, "the leak")

    def uss_mib() -> float:
        return max((w["uss"] for w in (m.status() or {}).get("workers", [])), default=0) / 2**20

    # the master has sampled the grown worker (the autoscaler reads the same figure)
    wait_for(
        lambda: uss_mib() > 60, 30, "the leaking worker's USS over 60 MiB in the status record"
    )
    ids += tq.enqueue_many(
        [(sleep, (0.5, i)) for i in range(30)]
    )  # pressure that wants more workers
    m.wait_log(f"recycling worker 1 (pid {first}", timeout=30)
    m.wait_log("MiB: scale-up held back")
    wait_for(lambda: all(tq.status(i).state == "succeeded" for i in ids), 60, "every job done")
    assert first not in m.worker_pids(), "the leaking worker was replaced"
    assert "scaling decision: scale_up" in m.log(), "once memory was back, the pool grew"


def test_pin_is_refused_when_the_autoscaler_is_off(redis_url, masters, capsys) -> None:
    m = masters(redis_url, "-w", "1")
    m.wait_workers(1)
    code, out = ctl(capsys, redis_url, "autoscaler", "pin", "2")
    assert code == 1 and "autoscaler is off" in out and "--enable-autoscaler" in out
    code, out = ctl(capsys, redis_url, "autoscaler")
    assert code == 0 and "autoscaler off" in out


@pytest.mark.cluster
def test_claim_script_grants_one_master_per_cooldown(redis_url) -> None:
    client = connect(redis_url)
    run, b = SyncRunner(client), Broker(Keys())
    rec = json.dumps({"action": "up", "from": 1, "to": 4})
    assert run(b.autoscale_claim("a", "up", 10_000, rec)) == (True, "a", 0)
    granted, holder, left = run(b.autoscale_claim("b", "up", 10_000, rec))
    assert (granted, holder) == (False, "a") and 0 < left <= 10_000
    down = json.dumps({"action": "down", "from": 4, "to": 3})
    assert run(b.autoscale_claim("b", "down", 10_000, down))[0], "directions are claimed apart"
    assert run(b.autoscale_claim("b", "up", 0, rec))[0], "claim_ms 0 only logs (a min/max bound)"
    log = [json.loads(x) for x in client.lrange(Keys().autoscaler_log, 0, -1)]
    assert [(x["master"], x["action"]) for x in log] == [("b", "up"), ("b", "down"), ("a", "up")]
    assert all(x["at_ms"] > 0 for x in log)
    with pytest.raises(redis.ResponseError, match="record is not JSON"):
        run(b.autoscale_claim("c", "up", 0, "nope"))
    assert client.llen(Keys().autoscaler_log) == 3


@pytest.mark.cluster
def test_recommendations_from_the_current_metrics(redis_url) -> None:
    tq = TaskQueue(redis_url)
    tq.enqueue_many([(noop, (i,)) for i in range(30)])
    advice = get_scaling_recommendations(tq)
    assert advice and advice[0].startswith("No master is running: 30 job(s) wait")
