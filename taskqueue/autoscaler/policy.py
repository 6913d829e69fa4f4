"""The autoscaler's settings as plain values: thresholds, steps, bounds, cooldowns, SLA targets.

Duties:
1. ``Thresholds``: the five trigger levels plus the older flat ones (the part adaptive tuning moves).
2. ``SLA``: the ``[autoscaler.target_sla]`` targets adaptive tuning steers toward.
3. ``Policy``: everything else the decision needs, built from a config by ``Policy.from_config``.
Pure data: no Redis, no processes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    """Levels at which a metric signals scale-up (queue, utilization, complexity) or blocks it
    (error rate, memory). ``flat_up``/``flat_down`` are the older ``scale_up_threshold`` and
    ``scale_down_threshold`` (plain waiting jobs per worker)."""

    queue_pressure: float = 0.75
    worker_utilization: float = 0.80
    task_complexity: float = 1.5
    error_rate: float = 0.05
    memory_mb: float = 512.0
    flat_up: float = 5.0
    flat_down: float = 1.0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in asdict(self).items()}

    def with_values(self, **values: float) -> Thresholds:
        return replace(self, **values)


@dataclass(frozen=True)
class SLA:
    """``[autoscaler.target_sla]``: what adaptive tuning judges each window against."""

    max_p95_latency_ms: float = 5000.0
    min_success_rate: float = 0.95
    max_queue_wait_time_ms: float = 10000.0
    target_worker_utilization: float = 0.70


@dataclass(frozen=True)
class Policy:
    min_workers: int = 1
    max_workers: int = 10
    #: Largest step up; the step itself is sized in proportion to the pressure (HPA style).
    scale_up_count: int = 4
    #: Largest step down.
    scale_down_count: int = 1
    scale_up_cooldown: float = 60.0
    scale_down_cooldown: float = 300.0
    consecutive: int = 2
    thresholds: Thresholds = Thresholds()
    sla: SLA = SLA()
    adaptive: bool = False
    learning_rate: float = 0.1
    window_seconds: float = 1800.0
    #: Job slots of one worker process (``workers.max_concurrent_tasks``).
    concurrency: int = 10

    @classmethod
    def from_config(cls, cfg: Any) -> Policy:
        """Build from a ``TaskQueueConfig`` (``cfg.autoscaler`` and ``cfg.workers``)."""
        a = cfg.autoscaler
        t, s = a.scaling_triggers, a.target_sla
        return cls(
            min_workers=a.min_workers, max_workers=a.max_workers,
            scale_up_count=a.scale_up_count, scale_down_count=a.scale_down_count,
            scale_up_cooldown=t.scale_up_cooldown_seconds,
            scale_down_cooldown=t.scale_down_cooldown_seconds,
            consecutive=t.consecutive_signals_required,
            thresholds=Thresholds(
                queue_pressure=t.queue_pressure_threshold,
                worker_utilization=t.worker_utilization_threshold,
                task_complexity=t.task_complexity_threshold, error_rate=t.error_rate_threshold,
                memory_mb=t.memory_pressure_threshold,
                flat_up=a.scale_up_threshold, flat_down=a.scale_down_threshold,
            ),
            sla=SLA(s.max_p95_latency_ms, s.min_success_rate, s.max_queue_wait_time_ms,
                    s.target_worker_utilization),
            adaptive=t.enable_adaptive_thresholds, learning_rate=t.learning_rate,
            window_seconds=t.adaptation_window_minutes * 60.0,
            concurrency=cfg.workers.max_concurrent_tasks,
        )  # fmt: skip

    def clamp(self, n: int) -> int:
        return max(self.min_workers, min(self.max_workers, n))
