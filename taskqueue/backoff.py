"""Retry backoff: exponential, capped, with jitter. Pure, so it is tested without Redis."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_ms(
    failures: int,
    base: float = 1.0,
    cap: float = 600.0,
    rand: Callable[[], float] = random.random,
) -> int:
    """Milliseconds to wait before the attempt that follows the ``failures``-th failure.

    The ceiling doubles with each failure (``base * 2 ** (failures - 1)``, at most ``cap``
    seconds); the delay is uniform in [ceiling / 2, ceiling] ("equal jitter"), so retries of many
    jobs that failed together spread out, yet none comes back sooner than half the ceiling.
    """
    if failures < 1:
        return 0
    ceiling = min(cap, base * 2.0 ** min(failures - 1, 62))
    return int(ceiling * (0.5 + 0.5 * rand()) * 1000)


def bounds_ms(failures: int, base: float = 1.0, cap: float = 600.0) -> tuple[int, int]:
    """The (lowest, highest) delay ``backoff_ms`` can return for this failure count."""
    ceiling = min(cap, base * 2.0 ** min(failures - 1, 62))
    return int(ceiling * 500), int(ceiling * 1000)
