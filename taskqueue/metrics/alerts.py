"""Alert rules over a metrics snapshot (pure): which conditions hold now.

From ``[alerts]``:
- ``queue_pressure`` (warning): waiting jobs weighted by queue priority, per live worker process,
  above ``max_queue_pressure_score`` (the autoscaler's queue-pressure signal);
- ``worker_utilization_high`` (warning) / ``worker_utilization_low`` (info): busy / total slots
  of the live workers above ``max_worker_utilization`` / below ``min_worker_utilization``;
- ``scaling_frequency`` (warning): a master's autoscaler scaled more than
  ``max_scaling_frequency_per_hour`` times in the last hour (the ``applied`` up/down entries of
  the ``history`` its status record's ``autoscaler`` object carries).

And always:
- ``redis_unreachable`` (critical): built by the caller when the read failed (``unreachable``);
- ``no_master:<queue>`` (critical): jobs wait in a queue that no live master consumes;
- ``dead_letter_growing`` (warning): jobs went to the dead letter in the last 5 minutes.

Each ``Alert`` has a stable ``key``; ``since_ms`` (when it was first seen) is kept by the
caller, which stores first-seen times (``taskqueue.web.state``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .snapshot import MetricsSnapshot

GROWTH_WINDOW = 5


@dataclass(frozen=True)
class Thresholds:
    max_queue_pressure_score: float = 2.0
    min_worker_utilization: float = 0.10
    max_worker_utilization: float = 0.95
    max_scaling_frequency_per_hour: int = 10

    @classmethod
    def from_config(cls, cfg: Any) -> Thresholds:
        a = cfg.alerts
        return cls(
            float(a.max_queue_pressure_score),
            float(a.min_worker_utilization),
            float(a.max_worker_utilization),
            int(a.max_scaling_frequency_per_hour),
        )


@dataclass(frozen=True)
class Alert:
    key: str
    name: str
    severity: str  # critical | warning | info
    message: str
    value: float | None = None
    threshold: float | None = None
    since_ms: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def unreachable(reason: str, since_ms: int | None) -> Alert:
    return Alert("redis_unreachable", "redis_unreachable", "critical",
                 f"Redis unreachable: {reason}", since_ms=since_ms)  # fmt: skip


def queue_weights(priority: Sequence[str]) -> dict[str, float]:
    """Weights for queues listed highest priority first, averaging 1 (3 queues: 1.5, 1, 0.5);
    queues not listed weigh 1."""
    n = len(priority)
    return {q: 2.0 * (n - i) / (n + 1) for i, q in enumerate(priority)}


def queue_pressure(snap: MetricsSnapshot, priority: Sequence[str]) -> float:
    weights = queue_weights(priority)
    weighted = sum(q.queued * weights.get(name, 1.0) for name, q in snap.queues.items())
    return weighted / max(1, len(snap.workers))


def evaluate(snap: MetricsSnapshot, th: Thresholds, priority: Sequence[str] = ()) -> list[Alert]:
    out: list[Alert] = []
    consumed = {q for m in snap.masters for q in m.queues}
    for name, q in sorted(snap.queues.items()):
        if q.queued > 0 and name not in consumed:
            out.append(Alert(
                f"no_master:{name}", "no_master", "critical",
                f"{q.queued} job(s) wait in queue {name!r} and no live master consumes it; "
                "start `task-worker worker -q " + name + "`", float(q.queued),
            ))  # fmt: skip
    dead = snap.window(GROWTH_WINDOW).count("dead")
    if dead > 0:
        out.append(Alert(
            "dead_letter_growing", "dead_letter_growing", "warning",
            f"{dead} job(s) went to the dead letter in the last {GROWTH_WINDOW} minutes "
            f"({snap.dead} there now); see GET /dead", float(dead), 0.0,
        ))  # fmt: skip
    pressure = queue_pressure(snap, priority)
    if pressure > th.max_queue_pressure_score:
        out.append(Alert(
            "queue_pressure", "queue_pressure", "warning",
            f"queue pressure {pressure:.2f} waiting jobs per worker is above "
            f"{th.max_queue_pressure_score:g}", round(pressure, 4), th.max_queue_pressure_score,
        ))  # fmt: skip
    util = snap.utilization
    if util is not None and util > th.max_worker_utilization:
        out.append(Alert(
            "worker_utilization_high", "worker_utilization_high", "warning",
            f"workers are {util:.0%} busy, above {th.max_worker_utilization:.0%}",
            round(util, 4), th.max_worker_utilization,
        ))  # fmt: skip
    if util is not None and util < th.min_worker_utilization:
        out.append(Alert(
            "worker_utilization_low", "worker_utilization_low", "info",
            f"workers are {util:.0%} busy, below {th.min_worker_utilization:.0%}",
            round(util, 4), th.min_worker_utilization,
        ))  # fmt: skip
    for m in snap.masters:
        n = scalings_last_hour(m.autoscaler, snap.taken_ms / 1000)
        if n is not None and n > th.max_scaling_frequency_per_hour:
            out.append(Alert(
                f"scaling_frequency:{m.id}", "scaling_frequency", "warning",
                f"master {m.id} scaled {n} times in the last hour, more than "
                f"{th.max_scaling_frequency_per_hour}", float(n),
                float(th.max_scaling_frequency_per_hour),
            ))  # fmt: skip
    return out


def scalings_last_hour(state: Mapping[str, Any] | None, now_s: float) -> int | None:
    """Scaling steps a master's autoscaler applied in the hour before ``now_s``: its own count
    (``scalings_last_hour``), or, from an older master, the steps its short history holds
    (None: the master publishes no autoscaler history)."""
    if state and isinstance(state.get("scalings_last_hour"), int):
        return int(state["scalings_last_hour"])
    if not state or not isinstance(state.get("history"), list):
        return None
    return sum(
        1 for e in state["history"]
        if isinstance(e, Mapping) and e.get("outcome") == "applied"
        and e.get("action") in ("up", "down") and float(e.get("at") or 0) >= now_s - 3600
    )  # fmt: skip
