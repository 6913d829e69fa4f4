"""What the autoscaler looks at: one ``Sample`` of the metrics, and the metrics derived from it.

Duties:
1. ``Sample``: the input of one decision, filled by the master from the metrics snapshot and
   from what it knows of its own workers (busy slots, USS memory).
2. ``Signals``: the five trigger metrics (plus the flat one) computed from a sample.
3. ``priority_weights``: how much a waiting job of each queue counts.
Pure: no Redis, no processes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Sample:
    """One observation. Times in seconds on any steady clock; durations in milliseconds."""

    at: float
    #: This master's worker processes (the pool it controls) and their job slots.
    workers: int
    slots: int
    busy: int
    #: Waiting jobs in this master's queues, plain and weighted by queue priority.
    queued: int = 0
    weighted_queued: float = 0.0
    #: Workers of every master on the namespace (None: this master's only).
    pool_workers: int | None = None
    #: Workers with no job in hand; scale-down retires only these (None: unknown, no limit).
    idle_workers: int | None = None
    #: Mean run time over the last minute, and its long-run baseline if the source knows it.
    run_ms: float | None = None
    run_ms_baseline: float | None = None
    #: failed / (succeeded + failed) over the last minute.
    error_rate: float | None = None
    #: Mean unique memory (USS) of one worker, MiB.
    memory_mb: float | None = None
    wait_p95_ms: float | None = None
    latency_p95_ms: float | None = None
    #: Jobs that finished (succeeded or failed) over the last minute.
    finished: int = 0


@dataclass(frozen=True)
class Signals:
    queue_pressure: float
    flat: float
    utilization: float
    complexity: float
    error_rate: float
    memory_mb: float

    @classmethod
    def of(cls, s: Sample, baseline: float | None) -> Signals:
        pool = max(s.pool_workers or 0, s.workers, 1)
        utilization = min(1.0, s.busy / s.slots) if s.slots > 0 else 1.0 if s.queued else 0.0
        base = s.run_ms_baseline or baseline
        complexity = s.run_ms / base if s.run_ms and base else 1.0
        return cls(
            queue_pressure=s.weighted_queued / pool, flat=s.queued / pool,
            utilization=utilization, complexity=complexity, error_rate=s.error_rate or 0.0,
            memory_mb=s.memory_mb or 0.0,
        )  # fmt: skip

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in asdict(self).items()}


def priority_weights(queues: list[str]) -> dict[str, float]:
    """Weights for queues listed highest priority first, averaging 1: 3 queues -> 1.5, 1, 0.5."""
    n = len(queues)
    return {q: 2.0 * (n - i) / (n + 1) for i, q in enumerate(queues)}
