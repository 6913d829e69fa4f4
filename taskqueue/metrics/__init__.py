"""Metrics of a namespace: a pure snapshot model (``snapshot``, ``histogram``, ``build``) and one
module that reads Redis into it (``reader``). See ``snapshot.py`` for the fields."""

from .histogram import Histogram, bucket_of
from .reader import read_snapshot
from .snapshot import (
    COUNTERS,
    WINDOWS,
    MasterMetrics,
    MetricsSnapshot,
    QueueMetrics,
    TaskMetrics,
    Window,
    WorkerMetrics,
)

__all__ = [
    "COUNTERS",
    "WINDOWS",
    "Histogram",
    "MasterMetrics",
    "MetricsSnapshot",
    "QueueMetrics",
    "TaskMetrics",
    "Window",
    "WorkerMetrics",
    "bucket_of",
    "read_snapshot",
]
