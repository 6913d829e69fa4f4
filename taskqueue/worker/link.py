"""The worker's asyncio Redis connection and its outage policy.

Duties:
1. Open one asyncio client (``connection.connect_async``) and run ``broker.Call`` objects on it.
2. On a connection error: log the outage once, back off (doubling, with jitter), report
   ``None``; log the recovery with the outage's length.
3. ``run_retry`` keeps trying a call that must land (ack, fail, release) through an outage.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import redis.exceptions

from ..connection import MAX_BLOCK, RedisSettings, connect_async
from ..redact import redact_text
from ..runner import AsyncRunner

log = logging.getLogger("taskqueue.worker")
#: Reconnect backoff after a Redis error (s): doubles from the first value to the second.
RECONNECT = (0.1, 5.0)


class RedisLink:
    """One asyncio client for a worker; ``stopping`` says when to give up on a retried call."""

    def __init__(self, settings: RedisSettings, stopping: Callable[[], bool]) -> None:
        self.settings = settings
        self.stopping = stopping
        self._outage_since: float | None = None
        self._backoff = RECONNECT[0]

    def open(self) -> None:
        """Create the client (inside the running event loop)."""
        self.redis = connect_async(self.settings, name="worker")
        #: Longest blocking wait (the connection adds its own read timeout on top).
        self.max_block = MAX_BLOCK
        self.call = AsyncRunner(self.redis)

    async def close(self) -> None:
        await self.redis.aclose()

    async def run(self, call: Any) -> Any:
        """Run a call; on a connection error log the outage once, back off, return None."""
        try:
            res = await self.call(call)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.BusyLoadingError, redis.exceptions.ReadOnlyError) as exc:  # fmt: skip
            await self.outage(exc)
            return None
        self.reconnected()
        return res

    async def run_retry(self, call: Any, attempts: int | None = None) -> Any:
        """Run a call that must land (ack, fail, release), retrying through outages."""
        n = 0
        while True:
            res = await self.run(call)
            if res is not None:
                return res
            n += 1
            if attempts is not None and n >= attempts:
                return None
            if self.stopping() and n >= 50:
                log.error("giving up on %s after %d tries; the lease will expire and the job "
                          "will be recovered", call.script, n)  # fmt: skip
                return None

    async def outage(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
            self._backoff = RECONNECT[0]
            log.error("lost Redis (%s); reconnecting with backoff", redact_text(str(exc)))
        await asyncio.sleep(self._backoff * random.uniform(0.5, 1.0))
        self._backoff = min(self._backoff * 2, RECONNECT[1])

    def reconnected(self) -> None:
        if self._outage_since is not None:
            log.warning("Redis is back after %.1fs", time.monotonic() - self._outage_since)
            self._outage_since = None
