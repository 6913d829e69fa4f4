"""The master's one Redis connection, used from its loop without ever stalling supervision.

Duties:
1. One client from ``connection.connect`` (``[redis]`` pool size and timeouts as configured:
   a hung Redis holds the loop at most ``command_timeout`` per call, then the back-off skips).
2. ``call``: run a function on the client. Any Redis error (an outage, a full Redis, a refused
   password, a bug; see ``redis_errors``) is logged once per change of state and backed off:
   calls made during the back-off return None at once, without touching the network. The
   master never dies of a Redis error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..connection import RedisSettings, connect
from ..redis_errors import Outage
from ..runner import SyncRunner

log = logging.getLogger("taskqueue.master")
T = TypeVar("T")
BACKOFF = (0.25, 8.0)


class RedisGuard:
    def __init__(self, settings: RedisSettings | str) -> None:
        self.client = connect(settings, name="master")
        self.run = SyncRunner(self.client)
        self.state = Outage(log, BACKOFF)
        self._retry_at = 0.0

    @property
    def down_since(self) -> float | None:
        return self.state.since

    @property
    def available(self) -> bool:
        return not self.state.down or time.monotonic() >= self._retry_at

    def call(self, fn: Callable[[], T], what: str = "") -> T | None:
        if not self.available:
            return None
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - classified and logged by Outage
            self._retry_at = time.monotonic() + self.state.failed(exc, what)
            return None
        self.state.ok()
        return result

    def script(self, call: Any) -> Any:
        return self.call(lambda: self.run(call), f"script {call.script}")

    def close(self) -> None:
        self.client.close()
