"""The decision: one sample and the autoscaler's state in, up n / down n / hold with reasons out.

Duties:
1. Keep the pool within ``min_workers..max_workers`` (at once, no hysteresis).
2. Scale-up signals: queue pressure, utilization, task complexity, the flat waiting-jobs level.
   The step is proportional, as Kubernetes' HPA sizes it (``ceil(current x metric / target)``),
   capped by ``scale_up_count`` and ``max_workers``, so a large burst is met in one decision.
   A high error rate (more workers do not fix a failing dependency) or memory pressure (which
   asks for recycling instead) holds scale-up back.
3. Scale-down: only with the queues quiet (under both the flat down level and the queue
   pressure level) and when one worker fewer still leaves utilization under its target: the gap
   between the up level and the target is the hysteresis. Only idle workers are retired.
4. Hysteresis in time: ``consecutive`` identical signals first, then the cooldown since the last
   step (``scale_up_cooldown`` before a scale-up, ``scale_down_cooldown`` before a scale-down).
5. Feed adaptive tuning (``adaptive.py``) and keep the run-time baseline for the complexity signal.
``decide`` returns the decision and the state as if it were applied; pure: no Redis, no processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from .adaptive import Adjustment, Window, adapt
from .policy import Policy, Thresholds
from .sample import Sample, Signals

#: Seconds over which the run-time baseline follows the recent mean (exponential average).
BASELINE_SECONDS = 600.0
#: Adjustments kept in the state (the latest last).
KEEP_ADJUSTMENTS = 10


@dataclass(frozen=True)
class State:
    thresholds: Thresholds
    start: Thresholds
    up_streak: int = 0
    down_streak: int = 0
    last_step_at: float | None = None
    last_up_at: float | None = None
    last_down_at: float | None = None
    last_recycle_at: float | None = None
    last_at: float | None = None
    baseline_ms: float | None = None
    window: Window = field(default_factory=Window)
    adjustments: tuple[Adjustment, ...] = ()

    @classmethod
    def initial(cls, policy: Policy) -> State:
        return cls(thresholds=policy.thresholds, start=policy.thresholds)

    def with_policy(self, policy: Policy) -> State:
        """After a reload: new starting thresholds; learnt ones kept only if they did not change."""
        if policy.thresholds == self.start:
            return self
        return replace(self, thresholds=policy.thresholds, start=policy.thresholds, adjustments=())

    def cooldown_left(self, policy: Policy, now: float) -> dict[str, float]:
        since = math.inf if self.last_step_at is None else now - self.last_step_at
        return {"up": max(0.0, policy.scale_up_cooldown - since),
                "down": max(0.0, policy.scale_down_cooldown - since)}  # fmt: skip


@dataclass(frozen=True)
class Decision:
    action: str  # "up", "down" or "hold"
    count: int
    workers: int
    target: int
    reasons: tuple[str, ...]
    signals: Signals
    thresholds: Thresholds
    at: float
    #: True for a step that answers load (claimed namespace-wide); False for min/max bounds.
    shared: bool = False
    #: Memory pressure: replace the worker using the most memory (once per scale-up cooldown).
    recycle: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action, "count": self.count, "workers": self.workers, "target": self.target,
            "reasons": list(self.reasons), "metrics": self.signals.as_dict(),
            "thresholds": self.thresholds.as_dict(), "recycle": self.recycle,
        }  # fmt: skip


def decide(
    sample: Sample, state: State, policy: Policy, pinned: int | None = None
) -> tuple[Decision, State]:
    state = _learn(sample, state, policy)
    sig = Signals.of(sample, state.baseline_ms)
    t = state.thresholds
    n = sample.workers

    def out(
        action: str, count: int, reasons: list[str], st: State, **kw: bool
    ) -> tuple[Decision, State]:
        target = n + count if action == "up" else n - count if action == "down" else n
        return Decision(action, count, n, target, tuple(reasons), sig, t, sample.at, **kw), st

    if pinned is not None:
        return out("hold", 0, [f"pinned at {pinned} workers by hand (tqctl autoscaler unpin)"],
                   replace(state, up_streak=0, down_streak=0))  # fmt: skip
    if n < policy.min_workers or n > policy.max_workers:
        target = policy.clamp(n)
        why = f"{n} workers is outside min_workers..max_workers ({policy.min_workers}..{policy.max_workers})"
        action = "up" if target > n else "down"
        return out(action, abs(target - n), [why], _stepped(state, sample.at, action))
    up, up_why = _up_step(sample, sig, t, policy)
    blocks, recycle = _blockers(sig, t)
    down, down_why = (0, []) if up else _down_step(sample, sig, t, policy)
    if up and blocks:
        st = replace(state, up_streak=0, down_streak=0)
        if recycle and _may_recycle(state, policy, sample.at):
            st = replace(st, last_recycle_at=sample.at)
            return out("hold", 0, up_why + blocks + ["recycling the worker using the most memory"], st,
                       recycle=True)  # fmt: skip
        return out("hold", 0, up_why + blocks, st)
    if up:
        return _gate(out, "up", up, up_why, replace(state, up_streak=state.up_streak + 1, down_streak=0),
                     policy, sample.at)  # fmt: skip
    if down:
        return _gate(out, "down", down, down_why,
                     replace(state, down_streak=state.down_streak + 1, up_streak=0), policy, sample.at)  # fmt: skip
    st = replace(state, up_streak=0, down_streak=0)
    return out("hold", 0, up_why + down_why or ["metrics within thresholds"], st)


def _gate(out: Any, action: str, count: int, why: list[str], state: State, policy: Policy,
          now: float) -> tuple[Decision, State]:  # fmt: skip
    """Hysteresis in time: enough consecutive signals, then the direction's cooldown."""
    streak = state.up_streak if action == "up" else state.down_streak
    if streak < policy.consecutive:
        return out("hold", 0, [*why, f"signal {streak} of {policy.consecutive} needed"], state)
    left = state.cooldown_left(policy, now)[action]
    if left > 0:
        return out("hold", 0, [*why, f"scale-{action} cooldown: {left:.0f}s left"], state)
    return out(action, count, why, _stepped(state, now, action), shared=True)


def _stepped(state: State, now: float, action: str) -> State:
    st = replace(state, up_streak=0, down_streak=0, last_step_at=now)
    return replace(st, last_up_at=now) if action == "up" else replace(st, last_down_at=now)


def _up_step(s: Sample, sig: Signals, t: Thresholds, p: Policy) -> tuple[int, list[str]]:
    """Workers to add (0: no scale-up signal) and why. HPA: desired = ceil(current x metric / level)."""
    pool = max(s.pool_workers or 0, s.workers, 1)
    target_util = p.sla.target_worker_utilization
    wants: list[tuple[int, str]] = []
    if sig.queue_pressure > t.queue_pressure:
        wants.append((math.ceil(pool * sig.queue_pressure / t.queue_pressure) - pool,
                      f"queue pressure {sig.queue_pressure:.2f} > {t.queue_pressure:.2f}"))  # fmt: skip
    if sig.flat > t.flat_up:
        wants.append((math.ceil(pool * sig.flat / t.flat_up) - pool,
                      f"waiting jobs per worker {sig.flat:.2f} > scale_up_threshold {t.flat_up:.2f}"))  # fmt: skip
    if sig.utilization > t.worker_utilization:
        wants.append((math.ceil(s.workers * sig.utilization / target_util) - s.workers,
                      f"utilization {sig.utilization:.0%} > {t.worker_utilization:.0%}"))  # fmt: skip
    loaded = s.queued > 0 or sig.utilization >= target_util
    if sig.complexity > t.task_complexity and loaded:
        wants.append((math.ceil(s.workers * sig.complexity / t.task_complexity) - s.workers,
                      f"jobs take {sig.complexity:.1f}x their baseline > {t.task_complexity:.1f}x"))  # fmt: skip
    if not wants:
        return 0, []
    room = p.max_workers - s.workers
    step = min(max(max(w for w, _ in wants), 1), p.scale_up_count, room)
    why = [w for _, w in wants]
    if room <= 0:
        return 0, [*why, f"already at max_workers ({p.max_workers})"]
    return step, why


def _blockers(sig: Signals, t: Thresholds) -> tuple[list[str], bool]:
    why, recycle = [], False
    if sig.error_rate > t.error_rate:
        why.append(f"error rate {sig.error_rate:.1%} > {t.error_rate:.1%}: scale-up held back "
                   "(more workers do not fix a failing dependency)")  # fmt: skip
    if t.memory_mb > 0 and sig.memory_mb > t.memory_mb:
        why.append(
            f"memory {sig.memory_mb:.0f} MiB per worker > {t.memory_mb:.0f} MiB: scale-up held back"
        )
        recycle = True
    return why, recycle


def _down_step(s: Sample, sig: Signals, t: Thresholds, p: Policy) -> tuple[int, list[str]]:
    if s.workers <= p.min_workers:
        return 0, []
    if sig.flat >= t.flat_down or sig.queue_pressure >= t.queue_pressure:
        return 0, []
    per_worker = s.slots / s.workers if s.slots and s.workers else p.concurrency
    target_util = p.sla.target_worker_utilization
    needed = max(p.min_workers, math.ceil(s.busy / (per_worker * target_util)))
    spare = s.workers - needed
    if spare <= 0:
        return 0, []
    step = min(spare, p.scale_down_count)
    why = [f"utilization {sig.utilization:.0%}: {needed} worker(s) keep it under {target_util:.0%}",
           f"waiting jobs per worker {sig.flat:.2f} < scale_down_threshold {t.flat_down:.2f}"]  # fmt: skip
    if s.idle_workers is not None:
        step = min(step, s.idle_workers)
        if step <= 0:
            return 0, [*why, "no idle worker to retire"]
    return step, why


def _may_recycle(state: State, policy: Policy, now: float) -> bool:
    return state.last_recycle_at is None or now - state.last_recycle_at >= policy.scale_up_cooldown


def _learn(s: Sample, state: State, policy: Policy) -> State:
    """Follow the run-time baseline; feed the adaptation window and close it when it is full."""
    base = state.baseline_ms
    if s.run_ms:
        dt = 0.0 if state.last_at is None else max(0.0, s.at - state.last_at)
        base = (
            s.run_ms if base is None else base + min(1.0, dt / BASELINE_SECONDS) * (s.run_ms - base)
        )
    state = replace(state, baseline_ms=base, last_at=s.at)
    if not policy.adaptive:
        return state
    util = min(1.0, s.busy / s.slots) if s.slots else 0.0
    window = state.window.add(s, util)
    if window.start is None or s.at - window.start < policy.window_seconds:
        return replace(state, window=window)
    thresholds, adj = adapt(state.thresholds, state.start, window, policy, s.at)
    kept = (*state.adjustments, adj)[-KEEP_ADJUSTMENTS:] if adj else state.adjustments
    return replace(state, thresholds=thresholds, window=Window(), adjustments=kept)
