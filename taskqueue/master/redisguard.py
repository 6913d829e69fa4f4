"""The master's one Redis connection, used from its loop without ever stalling supervision.

Duties:
1. One client from ``connection.connect`` (``[redis]`` pool size and timeouts as configured:
   a hung Redis holds the loop at most ``command_timeout`` per call, then the back-off skips).
2. ``call``: run a function on the client; on a connection error log the outage once, back
   off exponentially (calls made during the back-off return None at once, without touching
   the network), and log once when Redis is back.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
import redis.exceptions

from ..connection import RedisSettings, connect
from ..redact import redact_text
from ..runner import SyncRunner

log = logging.getLogger("taskqueue.master")
T = TypeVar("T")
BACKOFF = (0.25, 8.0)
ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
    OSError,
)


class RedisGuard:
    def __init__(self, settings: RedisSettings | str) -> None:
        self.client = connect(settings, name="master")
        self.run = SyncRunner(self.client)
        self.down_since: float | None = None
        self.outages = 0
        self._retry_at = 0.0
        self._backoff = BACKOFF[0]

    @property
    def available(self) -> bool:
        return self.down_since is None or time.monotonic() >= self._retry_at

    def call(self, fn: Callable[[], T]) -> T | None:
        if not self.available:
            return None
        try:
            result = fn()
        except ERRORS as exc:
            self._failed(exc)
            return None
        if self.down_since is not None:
            log.warning("Redis is back after %.1fs", time.monotonic() - self.down_since)
            self.down_since = None
            self._backoff = BACKOFF[0]
        return result

    def script(self, call: Any) -> Any:
        return self.call(lambda: self.run(call))

    def _failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
            self.outages += 1
            log.error("lost Redis (%s); retrying with backoff", redact_text(str(exc)))
        self._retry_at = now + self._backoff * random.uniform(0.5, 1.0)
        self._backoff = min(self._backoff * 2, BACKOFF[1])

    def close(self) -> None:
        self.client.close()
