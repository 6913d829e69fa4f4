"""Alert rules, SLA status and diagnostics over synthetic snapshots (pure, no Redis)."""

from __future__ import annotations

from taskqueue.metrics import Histogram, MetricsSnapshot, QueueMetrics, Window, bucket_of
from taskqueue.metrics.alerts import Thresholds, evaluate, scalings_last_hour
from taskqueue.metrics.build import master_from_record
from taskqueue.metrics.diagnostics import diagnose
from taskqueue.metrics.sla import Targets, sla_status

NOW = 1_800_000_000_000


def window(minutes: int, ok: int, failed: int, run_ms: float, wait_ms: float, dead: int = 0):
    n = ok + failed
    return Window(
        minutes, minutes * 60.0, {"succeeded": ok, "failed": failed, "dead": dead},
        Histogram({bucket_of(run_ms): n}), Histogram({bucket_of(wait_ms): n}),
    )  # fmt: skip


def snapshot(queued=0, busy=0, slots=10, history=None, dead=0, masters=True, paused=False):
    windows = {m: window(m, 90, 10, 4000, 200, dead) for m in (1, 5, 15, 60)}
    q = QueueMetrics("default", queued, 0, 0, paused, {}, windows)
    recs = [{"id": "h:1", "queues": ["default"], "started": NOW / 1000 - 60,
             "workers": [{"index": 1, "busy": busy, "slots": slots}],
             "autoscaler": {"enabled": True, "history": history or []}}] if masters else []  # fmt: skip
    return MetricsSnapshot(
        NOW, {"default": q}, {}, tuple(master_from_record(r) for r in recs), dead,
        QueueMetrics("*", queued, 0, 0, False, {}, windows),
        tuple(window(1, 9, 1, 4000, 200) for _ in range(10)),
    )  # fmt: skip


def names(alerts) -> set[str]:
    return {a.name for a in alerts}


def test_thresholds_raise_their_alerts() -> None:
    th = Thresholds(max_queue_pressure_score=2.0, min_worker_utilization=0.1,
                    max_worker_utilization=0.9, max_scaling_frequency_per_hour=2)  # fmt: skip
    assert names(evaluate(snapshot(busy=5), th)) == set()
    assert "worker_utilization_high" in names(evaluate(snapshot(busy=10), th))
    assert "worker_utilization_low" in names(evaluate(snapshot(busy=0), th))
    assert "queue_pressure" in names(evaluate(snapshot(queued=3, busy=5), th))
    steps = [{"at": NOW / 1000 - 60 * i, "action": "up", "outcome": "applied"} for i in range(3)]
    old = [{"at": NOW / 1000 - 7200, "action": "up", "outcome": "applied"}] * 5
    held = [{"at": NOW / 1000, "action": "hold", "outcome": "applied"}] * 5
    assert "scaling_frequency" in names(evaluate(snapshot(busy=5, history=steps), th))
    assert names(evaluate(snapshot(busy=5, history=old + held + steps[:2]), th)) == set()
    assert scalings_last_hour(None, NOW / 1000) is None


def test_the_scaling_frequency_alert_counts_past_the_short_history() -> None:
    """The status record keeps 20 steps; a master also publishes its count for the hour."""
    import time

    from taskqueue.autoscaler.decide import Decision
    from taskqueue.autoscaler.policy import Thresholds as Levels
    from taskqueue.autoscaler.sample import Signals
    from taskqueue.master.autoscale import KEEP, Autoscale

    auto = Autoscale("h:1")
    sig = Signals(3.0, 3.0, 1.0, 1.0, 0.0, 100.0)
    for action in ["up", "down"] * 15 + ["hold"] * 5:
        auto._tell(Decision(action, 1, 2, 3, ("test",), sig, Levels(), time.time()),
                   "applied" if action != "hold" else "held")  # fmt: skip
    assert len(auto.steps) == KEEP and auto.scalings_last_hour(time.time()) == 30
    assert auto.scalings_last_hour(time.time() + 3601) == 0  # an hour later, none left
    state = {"enabled": True, "scalings_last_hour": 30, "history": list(auto.steps)}
    th = Thresholds(max_scaling_frequency_per_hour=25)
    recs = [{"id": "h:1", "started": NOW / 1000, "workers": [], "autoscaler": state}]
    snap = MetricsSnapshot(NOW, {}, {}, tuple(master_from_record(r) for r in recs))
    assert "scaling_frequency" in names(evaluate(snap, th))


def test_jobs_nobody_consumes_and_dead_letter_growth_are_alerts() -> None:
    found = evaluate(snapshot(queued=4, masters=False, dead=2), Thresholds())
    by = {a.name: a for a in found}
    assert by["no_master"].severity == "critical" and by["no_master"].value == 4
    assert by["dead_letter_growing"].value == 2


def test_sla_reports_value_percentage_and_violating_minutes() -> None:
    st = sla_status(snapshot(busy=7), Targets(3000.0, 0.99, 5000.0, 0.75))
    t = {r["name"]: r for r in st["targets"]}
    assert st["status"] == "violated" and set(st["violated"]) == {"p95_latency_ms", "success_rate"}
    assert t["success_rate"]["value"] == 0.9 and t["success_rate"]["percent_of_target"] == 90.9
    assert t["p95_latency_ms"]["violations"] == 10 and t["queue_wait_p95_ms"]["status"] == "ok"
    # latency is p95 wait + p95 run, as the autoscaler and the setting's doc define it
    assert abs(t["p95_latency_ms"]["value"] - 4200) <= 4200 * 0.0625
    assert t["worker_utilization"]["value"] == 0.7 and t["worker_utilization"]["status"] == "ok"


def test_diagnostics_name_the_problem_and_what_to_do() -> None:
    d = diagnose(snapshot(queued=3, masters=False, paused=True, dead=1), {"default": 2},
                 {"default": 5})  # fmt: skip
    problems = {f["problem"] for f in d["findings"]}
    assert problems == {"stuck_leases", "paused_with_jobs", "no_consumer", "overdue_scheduled",
                        "dead_letter_growth"}  # fmt: skip
    assert not d["healthy"] and all(f["advice"] for f in d["findings"])
    assert diagnose(snapshot(busy=5), {}, {})["healthy"]
