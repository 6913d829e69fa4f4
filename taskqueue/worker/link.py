"""The worker's asyncio Redis connection and its outage policy.

Duties:
1. Open one asyncio client (``connection.connect_async``) and run ``broker.Call`` objects on it.
2. On any Redis error (an outage, a full Redis, a bug: classified by ``redis_errors``): log
   once per change of state, back off (doubling, with jitter), report ``None``; log the
   recovery with the outage's length. Never raises.
3. ``run_retry`` keeps trying a call that must land (ack, fail, release) through an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import redis

from ..connection import MAX_BLOCK, RedisSettings, connect_async
from ..redis_errors import Outage
from ..runner import AsyncRunner

log = logging.getLogger("taskqueue.worker")
#: Reconnect backoff after a Redis error (s): doubles from the first value to the second.
RECONNECT = (0.1, 5.0)


class RedisLink:
    """One asyncio client for a worker; ``stopping`` says when to give up on a retried call."""

    def __init__(self, settings: RedisSettings, stopping: Callable[[], bool]) -> None:
        self.settings = settings
        self.stopping = stopping
        self.state = Outage(log, RECONNECT)

    def open(self) -> None:
        """Create the client (inside the running event loop)."""
        self.redis = connect_async(self.settings, name="worker")
        #: Longest blocking wait (the connection adds its own read timeout on top).
        self.max_block = MAX_BLOCK
        self.call = AsyncRunner(self.redis)

    async def close(self) -> None:
        await self.redis.aclose()

    async def run(self, call: Any) -> Any:
        """Run a call; on any error log it once per change of state, back off, return None."""
        try:
            res = await self.call(call)
        except Exception as exc:  # noqa: BLE001 - classified and logged by Outage
            await self.outage(exc, f"script {call.script}")
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

    async def outage(self, exc: BaseException, what: str = "") -> None:
        starting = not self.state.down
        wait = self.state.failed(exc, what)
        if starting and isinstance(exc, (redis.ConnectionError, OSError)):
            # The server went away: every idle pooled connection is dead too. Drop them now, so
            # that after the recovery none of them fails once more and reads as a new outage.
            pool = getattr(self.redis, "connection_pool", None)
            if pool is not None:
                with contextlib.suppress(Exception):
                    await pool.disconnect(inuse_connections=False)
        await asyncio.sleep(wait)

    def reconnected(self) -> None:
        self.state.ok()
