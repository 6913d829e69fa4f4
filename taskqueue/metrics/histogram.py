"""Log-linear duration histograms, as the Lua scripts write them (``lua/includes/hist_bucket.lua``).

Bucket 0 holds [0, 1) ms. For ms >= 1, written ms = m * 2^e with 0.5 <= m < 1, the bucket is
``8e + floor(16m) - 15``: eight equal sub-buckets per power of two, so each bucket is at most
1/8 of its lower bound wide. A percentile is read at the middle of its bucket (within 6.25 % of
the true value), or at the bucket's only integer when the bucket is at most 1 ms wide (run times
and waits are whole milliseconds, so every value below 16 ms is exact).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: Sub-buckets per power of two (must match ``hist_bucket.lua``).
SUB = 8


def bucket_of(ms: float) -> int:
    """The bucket a duration falls in (the Lua function, in Python)."""
    if ms < 1:
        return 0
    m, e = math.frexp(ms)
    return e * SUB + math.floor(m * 2 * SUB) - (2 * SUB - 1)


def bounds(bucket: int) -> tuple[float, float]:
    """[low, high) of a bucket, in milliseconds."""
    if bucket <= 0:
        return 0.0, 1.0
    power, sub = divmod(bucket - 1, SUB)
    base = 2.0**power
    return base * (1 + sub / SUB), base * (1 + (sub + 1) / SUB)


def representative(bucket: int) -> float:
    """The value a bucket stands for: its only whole millisecond if it is at most 1 ms wide,
    else its middle."""
    low, high = bounds(bucket)
    if bucket > 0 and high - low <= 1:
        return float(math.ceil(low))
    return (low + high) / 2


@dataclass(frozen=True)
class Histogram:
    """Sample counts per bucket (``{bucket: count}``) of one duration, e.g. run time."""

    buckets: Mapping[int, int] = field(default_factory=dict)

    @classmethod
    def merge(cls, parts: Iterable[Histogram]) -> Histogram:
        out: dict[int, int] = {}
        for part in parts:
            for b, n in part.buckets.items():
                out[b] = out.get(b, 0) + n
        return cls(out)

    @property
    def count(self) -> int:
        return sum(self.buckets.values())

    def percentile(self, q: float) -> float | None:
        """The q-quantile (0 < q <= 1) in ms, None with no samples."""
        total = self.count
        if total == 0:
            return None
        rank = max(1, math.ceil(q * total))
        seen = 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen >= rank:
                return representative(b)
        return representative(max(self.buckets))  # pragma: no cover - rank <= total

    def mean(self) -> float | None:
        total = self.count
        if total == 0:
            return None
        return sum(representative(b) * n for b, n in self.buckets.items()) / total

    def summary(self) -> dict[str, float | int | None]:
        """``{"count", "mean", "p50", "p95", "p99"}`` in ms, rounded to 0.1 ms."""

        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 1)

        return {
            "count": self.count,
            "mean": r(self.mean()),
            "p50": r(self.percentile(0.50)),
            "p95": r(self.percentile(0.95)),
            "p99": r(self.percentile(0.99)),
        }
