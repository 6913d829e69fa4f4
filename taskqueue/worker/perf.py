"""Performance records (``logging.enable_performance_monitoring``): one log record per interval.

Duties:
1. ``PerfWindow`` (pure): collect each finished attempt's run and wait times and outcome, and
   summarise a window: throughput, p50/p95/p99 of run and wait times, slot utilisation.
2. ``run``: every ``metrics.export_interval`` seconds, log the window as an INFO record with
   ``event_type = "performance_metric"`` (see docs/logging.md) and start a new one.
Utilisation is the slot time used by the attempts that finished in the window over the slot time
available (``slots x interval``), capped at 1.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from .. import logs

if TYPE_CHECKING:
    from .core import Worker

log = logging.getLogger("taskqueue.worker")
PERCENTILES = (50, 95, 99)


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil
    return sorted_values[int(rank) - 1]


class PerfWindow:
    def __init__(self, slots: int, now: float | None = None) -> None:
        self.slots = slots
        self.reset(time.monotonic() if now is None else now)

    def reset(self, now: float) -> None:
        self.since = now
        self.run_ms: list[float] = []
        self.wait_ms: list[float] = []
        self.succeeded = self.failed = 0

    def record(self, run_ms: float, wait_ms: float, succeeded: bool) -> None:
        self.run_ms.append(run_ms)
        self.wait_ms.append(wait_ms)
        if succeeded:
            self.succeeded += 1
        else:
            self.failed += 1

    def summary(self, now: float) -> dict[str, Any]:
        """The window's figures (and a fresh window from ``now``)."""
        seconds = max(now - self.since, 1e-9)
        run, wait = sorted(self.run_ms), sorted(self.wait_ms)
        out: dict[str, Any] = {
            "event_type": "performance_metric",
            "interval_s": round(seconds, 3),
            "jobs": len(run),
            "succeeded": self.succeeded,
            "failed": self.failed,
            "throughput_per_s": round(len(run) / seconds, 3),
            "utilization": round(min(1.0, sum(run) / 1000 / (self.slots * seconds)), 4),
            "slots": self.slots,
        }
        if run:  # percentiles of an empty window are left out rather than null
            for p in PERCENTILES:
                out[f"run_ms_p{p}"] = round(percentile(run, p) or 0.0, 3)
                out[f"wait_ms_p{p}"] = round(percentile(wait, p) or 0.0, 3)
        self.reset(now)
        return out


async def run(worker: Worker, interval: float) -> None:
    """Log the worker's window every ``interval`` seconds until cancelled."""
    window = worker.perf
    assert window is not None
    while True:
        await asyncio.sleep(interval)
        fields = window.summary(time.monotonic())
        fields.update(worker=worker.name, busy=worker.busy)
        log.info(
            "performance: %d jobs in %.1fs, utilization %.0f%%", fields["jobs"],
            fields["interval_s"], fields["utilization"] * 100, extra=logs.safe_extra(fields),
        )  # fmt: skip
