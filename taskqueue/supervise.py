"""Background asyncio tasks that never die silently.

``supervised(name, factory)`` runs ``await factory()`` and, if it raises, logs the error with
its traceback and the task's name, waits (1 s, doubling to 30 s) and starts it again; it ends
only when the coroutine returns or the supervisor is cancelled. The worker's lease timer,
acker and heartbeat run under it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("taskqueue.worker")
RESTART = (1.0, 30.0)


async def supervised(name: str, factory: Callable[[], Awaitable[object]]) -> None:
    delay = RESTART[0]
    while True:
        try:
            await factory()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s died; restarting it in %.0fs", name, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, RESTART[1])
