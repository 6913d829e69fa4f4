"""Adaptive thresholds: once per adaptation window, move the trigger levels toward the SLA.

Duties:
1. ``Window``: what the SLA judgement needs, accumulated sample by sample (mean p95 wait and
   latency, mean utilization, finished and failed jobs).
2. ``adapt``: at the end of a window, judge it against ``[autoscaler.target_sla]`` and step:
   - p95 wait or latency over its target: the pool is too small when it matters, so the
     scale-up levels (queue pressure, utilization, complexity, flat) drop by ``learning_rate``;
   - both under half their target while utilization is under its target: workers sit idle,
     so the scale-up levels rise by ``learning_rate``;
   - the error-rate level (above which scale-up is held back) moves toward the failure share
     the SLA tolerates (1 - min_success_rate), ``learning_rate`` of the whole way per window.
3. ``bounds``: no level leaves [start / 2, start x 2] (utilization also stays above the target
   utilization, so scale-down and scale-up keep a gap; complexity stays above 1.1x); the error
   level stays between its start and the SLA's. Every step records its reason and its changes (``Adjustment``).
Pure: no Redis, no processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .policy import SLA, Policy, Thresholds
from .sample import Sample

#: The scale-up levels that move together; lower = scale up sooner.
UP_LEVELS = ("queue_pressure", "worker_utilization", "task_complexity", "flat_up")
#: How far a level may run from where it started (factor each way).
SPREAD = 2.0
#: Windows with fewer samples than this are not judged.
MIN_SAMPLES = 3


@dataclass(frozen=True)
class Window:
    start: float | None = None
    samples: int = 0
    wait_sum: float = 0.0
    wait_n: int = 0
    latency_sum: float = 0.0
    latency_n: int = 0
    util_sum: float = 0.0
    finished: float = 0.0
    failed: float = 0.0

    def add(self, s: Sample, utilization: float) -> Window:
        w = self
        return Window(
            start=s.at if w.start is None else w.start, samples=w.samples + 1,
            wait_sum=w.wait_sum + (s.wait_p95_ms or 0.0), wait_n=w.wait_n + (s.wait_p95_ms is not None),
            latency_sum=w.latency_sum + (s.latency_p95_ms or 0.0),
            latency_n=w.latency_n + (s.latency_p95_ms is not None), util_sum=w.util_sum + utilization,
            finished=w.finished + s.finished, failed=w.failed + s.finished * (s.error_rate or 0.0),
        )  # fmt: skip

    def means(self) -> tuple[float | None, float | None, float, float | None]:
        """(p95 wait, p95 latency, utilization, success rate) over the window."""
        wait = self.wait_sum / self.wait_n if self.wait_n else None
        latency = self.latency_sum / self.latency_n if self.latency_n else None
        success = 1.0 - self.failed / self.finished if self.finished else None
        return wait, latency, self.util_sum / max(self.samples, 1), success


@dataclass(frozen=True)
class Adjustment:
    at: float
    why: str
    changes: dict[str, tuple[float, float]]

    def as_dict(self) -> dict[str, object]:
        return {"at": self.at, "why": self.why,
                "changes": {k: [round(a, 4), round(b, 4)] for k, (a, b) in self.changes.items()}}  # fmt: skip


def bounds(name: str, start: Thresholds, sla: SLA) -> tuple[float, float]:
    value = getattr(start, name)
    if name == "error_rate":
        target = 1.0 - sla.min_success_rate
        return min(value, target), max(value, target)
    low, high = value / SPREAD, value * SPREAD
    if name == "worker_utilization":
        low, high = min(value, max(low, sla.target_worker_utilization + 0.05)), min(high, 0.99)
    if name == "task_complexity":  # under 1x, jobs merely as slow as usual would signal
        low = min(value, max(low, 1.1))
    if name == "flat_up":
        low = min(value, max(low, start.flat_down * 1.1))
    return low, high


def adapt(current: Thresholds, start: Thresholds, window: Window, policy: Policy,
          now: float) -> tuple[Thresholds, Adjustment | None]:  # fmt: skip
    """Judge a finished window; return the new thresholds and why they moved (None: unmoved)."""
    if window.samples < MIN_SAMPLES:
        return current, None
    sla, lr = policy.sla, policy.learning_rate
    wait, latency, util, _success = window.means()
    ratios = [r for r in ((wait, sla.max_queue_wait_time_ms), (latency, sla.max_p95_latency_ms))
              if r[0] is not None and r[1] > 0]  # fmt: skip
    worst = max((v / t for v, t in ratios), default=None)  # type: ignore[operator]
    factor, whys = 1.0, []
    if worst is not None and worst > 1.0:
        factor = 1.0 - lr
        whys.append(f"p95 wait/latency at {worst:.0%} of the SLA target: scale up sooner")
    elif worst is not None and worst < 0.5 and util < sla.target_worker_utilization:
        factor = 1.0 + lr
        whys.append(f"p95 wait/latency at {worst:.0%} of the SLA target and utilization "
                    f"{util:.0%} under the {sla.target_worker_utilization:.0%} target: scale up later")  # fmt: skip
    values = {name: getattr(current, name) * factor for name in UP_LEVELS}
    err_target = 1.0 - sla.min_success_rate
    gap, stride = err_target - current.error_rate, lr * abs(err_target - start.error_rate)
    values["error_rate"] = current.error_rate + math.copysign(min(abs(gap), stride), gap)
    changes = {}
    for name, value in values.items():
        low, high = bounds(name, start, sla)
        new = max(low, min(high, value))
        old = getattr(current, name)
        if abs(new - old) > 1e-6 * max(abs(old), 1e-3):
            changes[name] = (old, new)
    if not changes:
        return current, None
    if "error_rate" in changes:
        whys.append(f"error level moving toward the {err_target:.1%} failures the SLA tolerates")
    new_t = replace(current, **{k: v[1] for k, v in changes.items()})
    return new_t, Adjustment(now, "; ".join(whys), changes)
