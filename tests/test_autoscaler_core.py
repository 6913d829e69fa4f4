"""The autoscaler's decision core on synthetic traces: no Redis, no processes."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from taskqueue.autoscaler import SLA, Decision, Policy, Sample, State, Thresholds, decide
from taskqueue.autoscaler.sample import priority_weights

STEP = 5.0  # seconds between samples, as in the master
SLOTS = 10


def sample(
    at: float, workers: int, *, queued: float = 0, busy: int | None = None, **kw: object
) -> Sample:
    slots = workers * SLOTS
    b = min(slots, int(queued + (busy or 0))) if busy is None else busy
    return Sample(at=at, workers=workers, slots=slots, busy=b, queued=int(queued),
                  weighted_queued=float(queued), **kw)  # type: ignore[arg-type]  # fmt: skip


def run(policy: Policy, load: Callable[[float, int], Sample], seconds: float, workers: int,
        state: State | None = None) -> tuple[list[Decision], list[int], State]:  # fmt: skip
    """Closed loop: every STEP seconds, sample the load at the current size, apply the decision."""
    state = state or State.initial(policy)
    decisions, sizes = [], []
    t = 0.0
    while t < seconds:
        d, state = decide(load(t, workers), state, policy)
        if d.action != "hold":
            decisions.append(d)
            workers = d.target
        sizes.append(workers)
        t += STEP
    return decisions, sizes, state


def demand_pool(jobs_in_system: Callable[[float], float]) -> Callable[[float, int], Sample]:
    """Jobs in the system fill the slots first; the rest wait in the queue."""

    def load(t: float, workers: int) -> Sample:
        jobs = jobs_in_system(t)
        slots = workers * SLOTS
        return sample(t, workers, queued=max(0.0, jobs - slots), busy=int(min(jobs, slots)))

    return load


FAST = Policy(min_workers=1, max_workers=6, scale_up_count=10, scale_down_count=1,
              scale_up_cooldown=0, scale_down_cooldown=0, consecutive=3)  # fmt: skip


def test_step_scales_up_only_after_consecutive_signals_and_never_past_max() -> None:
    load = demand_pool(lambda t: 600 if t >= 50 else 5)
    decisions, sizes, _ = run(FAST, load, 300, workers=1)
    ups = [d for d in decisions if d.action == "up"]
    assert ups, "the step never scaled up"
    first = ups[0]
    # high from t = 50: the samples at 50, 55 and 60 are the three signals needed
    assert first.at == 50 + (FAST.consecutive - 1) * STEP
    assert first.target == FAST.max_workers, "a burst is met in one proportional step"
    assert max(sizes) == FAST.max_workers
    assert all("queue pressure" in " ".join(d.reasons) for d in ups)
    d, _ = decide(load(400, FAST.max_workers), State.initial(FAST), FAST)
    assert d.action == "hold" and "already at max_workers (6)" in d.reasons


def test_one_signal_fewer_than_required_never_scales() -> None:
    bursts = demand_pool(lambda t: 600 if int(t / STEP) % 3 != 2 else 5)  # two high, one low, ...
    decisions, _, _ = run(FAST, bursts, 600, workers=1)
    assert decisions == []


def test_proportional_step_is_capped_by_scale_up_count() -> None:
    policy = replace(FAST, max_workers=50, scale_up_count=4, consecutive=1)
    d, _ = decide(sample(0, 2, queued=100), State.initial(policy), policy)
    assert (d.action, d.count, d.target) == ("up", 4, 6)
    d, _ = decide(sample(0, 2, queued=1, busy=14), State.initial(policy), policy)  # 0.5 < 0.75
    assert d.action == "hold"
    d, _ = decide(
        sample(0, 4, queued=5), State.initial(policy), policy
    )  # 1.25 -> ceil(4*1.25/.75)=7
    assert (d.action, d.target) == ("up", 7)


def test_oscillating_load_does_not_flap() -> None:
    hysteresis = Policy(min_workers=1, max_workers=10, scale_up_count=4, scale_down_count=1,
                        scale_up_cooldown=60, scale_down_cooldown=300, consecutive=2)  # fmt: skip
    twitchy = replace(hysteresis, scale_up_cooldown=0, scale_down_cooldown=0, consecutive=1)
    every_sample = demand_pool(lambda t: 80 if int(t / STEP) % 2 else 0)
    assert run(hysteresis, every_sample, 3600, workers=1)[0] == []
    # a slower wave: 40 s of work, 40 s of nothing, for an hour
    wave = demand_pool(lambda t: 80 if t % 80 < 40 else 0)
    calm = run(hysteresis, wave, 3600, workers=1)[0]
    jumpy = run(twitchy, wave, 3600, workers=1)[0]
    ups = [d for d in calm if d.action == "up"]
    downs = [d for d in calm if d.action == "down"]
    assert len(ups) <= 3600 / 60 and len(downs) <= 3600 / 300 + 1
    assert len(calm) <= 20, f"{len(calm)} decisions an hour"
    assert len(jumpy) > 3 * len(calm), "the comparison without hysteresis should flap"


def test_idle_scales_down_to_min_only_after_its_cooldown() -> None:
    policy = Policy(min_workers=2, max_workers=10, scale_down_count=1, scale_up_cooldown=30,
                    scale_down_cooldown=120, consecutive=2)  # fmt: skip
    state = replace(State.initial(policy), last_step_at=0.0)  # a scale-up just happened
    idle = demand_pool(lambda t: 0)
    decisions, sizes, _ = run(policy, idle, 1200, workers=8, state=state)
    assert all(d.action == "down" for d in decisions)
    assert decisions[0].at >= 120
    gaps = [b.at - a.at for a, b in zip(decisions, decisions[1:], strict=False)]
    assert all(g >= 120 for g in gaps)
    assert sizes[-1] == 2 and min(sizes) == 2
    assert all(d.count == 1 for d in decisions)


def test_scale_down_keeps_utilization_under_target_and_retires_only_idle_workers() -> None:
    policy = replace(FAST, max_workers=10, scale_down_count=10, consecutive=1)
    d, _ = decide(sample(0, 8, busy=20), State.initial(policy), policy)
    # 20 busy slots at 70 % target need ceil(20 / 7) = 3 workers
    assert (d.action, d.target) == ("down", 3)
    d, _ = decide(sample(0, 8, busy=20, idle_workers=2), State.initial(policy), policy)
    assert (d.action, d.target) == ("down", 6)
    d, _ = decide(sample(0, 8, busy=20, idle_workers=0), State.initial(policy), policy)
    assert d.action == "hold" and "no idle worker to retire" in d.reasons
    # busy enough that one worker fewer would pass the target: hold (the hysteresis gap)
    d, _ = decide(sample(0, 4, busy=22), State.initial(policy), policy)
    assert d.action == "hold"


def test_high_error_rate_alone_never_scales_up() -> None:
    policy = replace(FAST, consecutive=1)
    failing = lambda t, w: sample(t, w, busy=w * 2, error_rate=0.9)  # noqa: E731
    decisions, sizes, _ = run(policy, failing, 600, workers=2)
    assert all(d.action != "up" for d in decisions) and max(sizes) <= 2
    # even with a queue that would otherwise scale up, a failing dependency holds it back
    d, _ = decide(sample(0, 2, queued=200, error_rate=0.5), State.initial(policy), policy)
    assert d.action == "hold"
    assert any("error rate" in r and "failing dependency" in r for r in d.reasons)


def test_memory_pressure_blocks_scale_up_and_asks_for_recycling() -> None:
    policy = replace(FAST, consecutive=1, scale_up_cooldown=60)
    state = State.initial(policy)
    hot = lambda t: sample(t, 2, queued=200, memory_mb=900.0)  # noqa: E731
    d, state = decide(hot(0), state, policy)
    assert d.action == "hold" and d.recycle
    assert any("memory 900 MiB" in r for r in d.reasons)
    d, state = decide(hot(5), state, policy)
    assert d.action == "hold" and not d.recycle, "one recycle per scale-up cooldown"
    d, state = decide(hot(65), state, policy)
    assert d.recycle
    d, _ = decide(sample(70, 2, queued=200, memory_mb=100.0), state, policy)
    assert d.action == "up"


def test_bounds_apply_at_once_and_pin_holds() -> None:
    policy = replace(FAST, min_workers=3, consecutive=5, scale_up_cooldown=999)
    d, _ = decide(sample(0, 1), State.initial(policy), policy)
    assert (d.action, d.target, d.shared) == ("up", 3, False)
    d, _ = decide(sample(0, 9), State.initial(policy), policy)
    assert (d.action, d.target) == ("down", 6)
    d, _ = decide(sample(0, 3, queued=500), State.initial(policy), policy, pinned=3)
    assert d.action == "hold" and "pinned" in d.reasons[0]


def test_old_flat_thresholds_keep_working() -> None:
    t = Thresholds(queue_pressure=1000, worker_utilization=0.99, flat_up=2.0, flat_down=0.5)
    policy = replace(FAST, thresholds=t, consecutive=1, max_workers=20)
    d, _ = decide(sample(0, 4, queued=12, busy=4), State.initial(policy), policy)
    assert d.action == "up" and "scale_up_threshold" in " ".join(d.reasons)
    d, _ = decide(sample(0, 4, queued=4, busy=4), State.initial(policy), policy)  # 1 >= 0.5
    assert d.action == "hold"


def test_task_complexity_scales_a_loaded_pool_only() -> None:
    policy = replace(FAST, consecutive=1, max_workers=20)
    state = replace(State.initial(policy), baseline_ms=100.0)
    busy = sample(0, 4, busy=30, run_ms=400.0)  # 75 % busy, jobs 4x slower
    d, _ = decide(busy, state, policy)
    assert d.action == "up" and "baseline" in " ".join(d.reasons)
    d, _ = decide(sample(0, 4, busy=2, run_ms=400.0), state, policy)
    assert d.action != "up"


def test_adaptive_thresholds_converge_toward_the_sla_and_stay_in_bounds() -> None:
    sla = SLA(max_p95_latency_ms=60_000, min_success_rate=0.99, max_queue_wait_time_ms=5000,
              target_worker_utilization=0.7)  # fmt: skip
    policy = Policy(thresholds=Thresholds(queue_pressure=1.5), sla=sla, adaptive=True,
                    learning_rate=0.1, window_seconds=60)  # fmt: skip
    state = State.initial(policy)
    # the plant: queue wait p95 grows with how late the pool scales up
    for i in range(600):
        qp = state.thresholds.queue_pressure
        s = sample(i * STEP, 4, busy=20, wait_p95_ms=4000 * qp / 0.75, finished=100, error_rate=0.0)
        _, state = decide(s, state, policy)
    qp = state.thresholds.queue_pressure
    assert 4000 * qp / 0.75 <= 5000, "wait p95 brought under the SLA target"
    assert 4000 * qp / 0.75 >= 2500, "and it stopped there, not at the floor"
    moved = [a for a in state.adjustments if "queue_pressure" in a.changes]
    assert moved and all("scale up sooner" in a.why for a in moved)
    assert state.adjustments[-1].at < 1500, "and stopped moving once there"
    assert state.thresholds.error_rate < 0.05 and state.thresholds.error_rate >= 0.01
    # a window that always violates drives the levels to their floor and no further
    for i in range(600, 3000):
        _, state = decide(sample(i * STEP, 4, busy=40, wait_p95_ms=60_000), state, policy)
    t = state.thresholds
    assert math.isclose(t.queue_pressure, 1.5 / 2) and t.worker_utilization >= 0.75
    assert t.flat_up >= policy.thresholds.flat_down
    # an idle, comfortable pool drives them up to their ceiling and no further
    for i in range(3000, 6000):
        _, state = decide(sample(i * STEP, 4, busy=2, wait_p95_ms=10), state, policy)
    assert math.isclose(state.thresholds.queue_pressure, 3.0)
    assert state.thresholds.worker_utilization <= 0.99
    assert "scale up later" in state.adjustments[-1].why


def test_priority_weights() -> None:
    assert priority_weights(["a", "b", "c"]) == {"a": 1.5, "b": 1.0, "c": 0.5}
    assert priority_weights(["only"]) == {"only": 1.0}


def test_recommendations_speak_plainly_about_each_signal() -> None:
    from taskqueue.autoscaler.reader import recommendations
    from taskqueue.metrics import (
        MasterMetrics,
        MetricsSnapshot,
        QueueMetrics,
        Window,
        WorkerMetrics,
    )

    def worker(i: int, busy: int) -> WorkerMetrics:
        return WorkerMetrics("h:1", i, 100 + i, "running", busy, 10, 0, 900 * 2**20, 0.0, 0)

    auto = {"enabled": True, "pinned": 2, "thresholds": Thresholds().as_dict()}
    master = MasterMetrics("h:1", "h", 1, 0.0, ("default",), 2, 2, (worker(1, 10), worker(2, 10)),
                           autoscaler=auto)  # fmt: skip
    failing = Window(1, 60.0, {"succeeded": 10, "failed": 10})
    snap = MetricsSnapshot(0, {"default": QueueMetrics("default", queued=50, windows={1: failing})},
                           masters=(master,))  # fmt: skip
    text = "\n".join(recommendations(snap))
    assert "pinned at 2 workers" in text and "tqctl autoscaler unpin --master h:1" in text
    assert "50% of the jobs" in text and "more workers will not help" in text
    assert "900 MiB each" in text and "--max-memory-per-child" in text
    assert "50 job(s) wait for 2 worker(s)" in text and "about 5 more worker(s)" in text
    assert "100% busy" in text
    calm = MetricsSnapshot(0, {"default": QueueMetrics("default")},
                           masters=(MasterMetrics("h:1", "h", 1, 0.0, ("default",), 1, 1, (worker(1, 5),)),))  # fmt: skip
    assert recommendations(calm) == ["Workers use 900 MiB each (level 512 MiB): set --max-memory-per-child "
                                     "to recycle them, or look for a leak."]  # fmt: skip


def test_prometheus_autoscaler_families_follow_the_published_state() -> None:
    from taskqueue.metrics import MasterMetrics, MetricsSnapshot
    from taskqueue.web.prom import autoscaler_families

    state = {"enabled": True, "pinned": 3, "metrics": {"queue_pressure": 2.5},
             "thresholds": {"queue_pressure": 0.7}, "initial_thresholds": {"queue_pressure": 0.75},
             "cooldown_left": {"up": 12.0, "down": 0.0}, "decisions": {"up": 2, "down": 1}}  # fmt: skip
    snap = MetricsSnapshot(0, masters=(
        MasterMetrics("a:1", "a", 1, 0.0, ("default",), 3, 3, autoscaler=state),
        MasterMetrics("b:2", "b", 2, 0.0, ("default",), 1, 1, autoscaler={"enabled": False}),
    ))  # fmt: skip
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in autoscaler_families(snap, initial=True) for s in fam.samples}  # fmt: skip
    assert samples[("taskqueue_autoscaler_enabled", (("master", "a:1"),))] == 1
    assert samples[("taskqueue_autoscaler_enabled", (("master", "b:2"),))] == 0
    assert samples[("taskqueue_autoscaler_pinned_workers", (("master", "a:1"),))] == 3
    assert (
        samples[
            ("taskqueue_autoscaler_threshold", (("master", "a:1"), ("metric", "queue_pressure")))
        ]
        == 0.7
    )
    assert samples[("taskqueue_autoscaler_initial_threshold",
                    (("master", "a:1"), ("metric", "queue_pressure")))] == 0.75  # fmt: skip
    assert (
        samples[("taskqueue_autoscaler_metric", (("master", "a:1"), ("metric", "queue_pressure")))]
        == 2.5
    )
    assert (
        samples[("taskqueue_autoscaler_cooldown_seconds", (("direction", "up"), ("master", "a:1")))]
        == 12
    )
    assert (
        samples[("taskqueue_autoscaler_decisions_total", (("master", "a:1"), ("outcome", "up")))]
        == 2
    )
    hidden = {f.name for f in autoscaler_families(snap, initial=False)}
    assert "taskqueue_autoscaler_initial_threshold" not in hidden


def test_utilization_above_its_threshold_scales_up_toward_the_target() -> None:
    t = Thresholds(queue_pressure=1000, worker_utilization=0.6, flat_up=1000)
    policy = replace(FAST, thresholds=t, consecutive=1, max_workers=20)
    d, _ = decide(sample(0, 4, busy=26), State.initial(policy), policy)  # 65 % > 60 %
    # ceil(4 x 0.65 / 0.70) = 4: the step is the smallest one, a worker
    assert (d.action, d.target) == ("up", 5) and "utilization 65% > 60%" in d.reasons
    d, _ = decide(sample(0, 4, busy=22), State.initial(policy), policy)  # 55 %
    assert d.action == "hold"


def test_adaptation_judges_latency_and_success_against_their_targets() -> None:
    sla = SLA(max_p95_latency_ms=1000, min_success_rate=0.9, max_queue_wait_time_ms=60_000)
    policy = Policy(sla=sla, adaptive=True, learning_rate=0.5, window_seconds=30)
    state = State.initial(policy)
    for i in range(8):  # latency alone over its target; 10 % failures (the SLA tolerates 10 %)
        _, state = decide(sample(i * STEP, 4, busy=20, latency_p95_ms=2000, wait_p95_ms=10, finished=10,
                                 error_rate=0.1), state, policy)  # fmt: skip
    adj = state.adjustments[0]
    assert "scale up sooner" in adj.why and adj.changes["queue_pressure"] == (0.75, 0.375)
    assert math.isclose(adj.changes["error_rate"][1], 0.075), "half way from 0.05 toward 1 - 0.9"


def test_policy_reads_every_autoscaler_setting_from_the_config(tmp_path) -> None:
    from taskqueue.config import TaskQueueConfig
    from taskqueue.master.autoscale import Autoscale

    conf = tmp_path / "tq.toml"
    conf.write_text(
        "[workers]\nmax_concurrent_tasks = 3\n"
        "[autoscaler]\nenabled = true\nmin_workers = 2\nmax_workers = 9\nscale_up_count = 5\n"
        "scale_down_count = 3\nsample_interval = 0.5\nscale_up_threshold = 4.0\nscale_down_threshold = 0.5\n"
        "[autoscaler.scaling_triggers]\nqueue_pressure_threshold = 1.2\nworker_utilization_threshold = 0.85\n"
        "task_complexity_threshold = 2.0\nerror_rate_threshold = 0.03\nmemory_pressure_threshold = 1024.0\n"
        "enable_adaptive_thresholds = true\nlearning_rate = 0.05\nadaptation_window_minutes = 60\n"
        "scale_up_cooldown_seconds = 180\nscale_down_cooldown_seconds = 900\nconsecutive_signals_required = 3\n"
        "[autoscaler.target_sla]\nmax_p95_latency_ms = 3000.0\nmin_success_rate = 0.99\n"
        "max_queue_wait_time_ms = 5000.0\ntarget_worker_utilization = 0.75\n"
    )
    cfg = TaskQueueConfig.from_file(conf)
    p = Policy.from_config(cfg)
    assert (p.min_workers, p.max_workers, p.scale_up_count, p.scale_down_count) == (2, 9, 5, 3)
    assert (p.scale_up_cooldown, p.scale_down_cooldown, p.consecutive) == (180, 900, 3)
    assert p.thresholds == Thresholds(1.2, 0.85, 2.0, 0.03, 1024.0, 4.0, 0.5)
    assert p.sla == SLA(3000.0, 0.99, 5000.0, 0.75)
    assert (p.adaptive, p.learning_rate, p.window_seconds, p.concurrency) == (True, 0.05, 3600, 3)
    a = Autoscale("me")
    a.configure(cfg)
    assert a.enabled and a.interval == 0.5 and a.bound(0) == 2 and a.bound(50) == 9
