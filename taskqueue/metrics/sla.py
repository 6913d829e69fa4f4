"""SLA status: each ``[autoscaler.target_sla]`` target against the snapshot (pure).

Targets and the value each is compared with, over the window (all queues together):

- ``max_p95_latency_ms``: p95 queue wait + p95 run time of finished attempts, the same sum the
  autoscaler's adaptive tuning steers (an upper bound of the p95 of wait + run);
- ``min_success_rate``: succeeded / (succeeded + failed);
- ``max_queue_wait_time_ms``: p95 queue wait (queued or due until leased);
- ``target_worker_utilization``: busy / total slots of the live workers now; a target, not a
  limit: reported with its distance, never "violated".

``violations`` counts the minutes of the last hour (``snapshot.history``) whose own value broke
the target; minutes with no finished job do not count. ``percent_of_target`` is value / target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .snapshot import MetricsSnapshot, Window


@dataclass(frozen=True)
class Targets:
    max_p95_latency_ms: float = 5000.0
    min_success_rate: float = 0.95
    max_queue_wait_time_ms: float = 10000.0
    target_worker_utilization: float = 0.70

    @classmethod
    def from_config(cls, cfg: Any) -> Targets:
        t = cfg.autoscaler.target_sla
        return cls(
            float(t.max_p95_latency_ms),
            float(t.min_success_rate),
            float(t.max_queue_wait_time_ms),
            float(t.target_worker_utilization),
        )


def _p95_latency(w: Window) -> float | None:
    run = w.run_ms.percentile(0.95)
    return None if run is None else (w.wait_ms.percentile(0.95) or 0.0) + run


def _p95_wait(w: Window) -> float | None:
    return w.wait_ms.percentile(0.95)


def _success(w: Window) -> float | None:
    return w.success_rate


#: name -> (target attribute, per-window value, True when the target is a maximum)
RULES: dict[str, tuple[str, Callable[[Window], float | None], bool]] = {
    "p95_latency_ms": ("max_p95_latency_ms", _p95_latency, True),
    "success_rate": ("min_success_rate", _success, False),
    "queue_wait_p95_ms": ("max_queue_wait_time_ms", _p95_wait, True),
}


def _target(name: str, value: float | None, target: float, is_max: bool, violations: int | None):
    if value is None:
        status = "no_data"
    elif (value > target) if is_max else (value < target):
        status = "violated"
    else:
        status = "ok"
    return {
        "name": name,
        "target": target,
        "kind": "max" if is_max else "min",
        "value": None if value is None else round(value, 4),
        "percent_of_target": None
        if value is None or not target
        else round(100.0 * value / target, 1),
        "status": status,
        "violations": violations,
    }


def sla_status(snap: MetricsSnapshot, targets: Targets, window: int = 5) -> dict[str, Any]:
    """``{"window_minutes", "status": ok|violated|no_data, "targets": [...],
    "violated": [names], "minutes_observed"}``."""
    w = snap.window(window)
    observed = [m for m in snap.history if m.finished > 0]
    rows = []
    for name, (attr, value_of, is_max) in RULES.items():
        target = float(getattr(targets, attr))
        bad = 0
        for m in observed:
            v = value_of(m)
            if v is not None and ((v > target) if is_max else (v < target)):
                bad += 1
        rows.append(_target(name, value_of(w), target, is_max, bad))
    util = snap.utilization
    row = _target("worker_utilization", util, targets.target_worker_utilization, True, None)
    row["kind"] = "target"
    row["status"] = "no_data" if util is None else "ok"
    rows.append(row)
    violated = [r["name"] for r in rows if r["status"] == "violated"]
    any_data = any(r["status"] != "no_data" for r in rows)
    return {
        "window_minutes": window,
        "status": "violated" if violated else "ok" if any_data else "no_data",
        "violated": violated,
        "minutes_observed": len(observed),
        "targets": rows,
    }
