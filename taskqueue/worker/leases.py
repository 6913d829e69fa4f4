"""The lease keeper: keep the leases of running jobs alive, and stop jobs that lost theirs.

Duties:
1. ``news(lost, cancelled)``: stop jobs whose lease moved on (their outcome is dropped) and jobs
   whose cancellation was asked (recorded as cancelled). The master sends this news to its
   children; a standalone worker finds it itself.
2. Standalone only (no master): extend held leases every third of the lease, and recover
   expired leases of this worker's queues at a jittered interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import registered
from .running import Running

if TYPE_CHECKING:
    from .core import Worker

log = logging.getLogger("taskqueue.worker")


class LeaseKeeper:
    """Leases of the jobs ``worker`` holds."""

    def __init__(self, worker: Worker) -> None:
        self.w = worker

    async def run(self) -> None:
        """Extend and recover until cancelled (standalone workers)."""
        w = self.w
        interval = w.broker.lease_ms / 3000
        next_recover = time.monotonic()
        while True:
            await self.publish()
            await asyncio.sleep(min(interval, registered.PUBLISH_EVERY))
            await self.extend()
            if time.monotonic() >= next_recover:
                await w.link.run(w.broker.recover(w.queues))
                next_recover = time.monotonic() + interval * random.uniform(1.0, 2.0)

    async def publish(self) -> None:
        """Write this worker's entry of the registered tasks (``taskqueue/registered.py``)."""
        w = self.w
        value = registered.entry(w.queues, w.registry.describe())
        try:
            await w.link.redis.hset(w.keys.registered, w.name, value)
        except Exception as exc:  # noqa: BLE001 - classified and logged by the link
            await w.link.outage(exc, "publishing the registered tasks")

    async def unpublish(self) -> None:
        w = self.w
        with contextlib.suppress(Exception):
            await w.link.redis.hdel(w.keys.registered, w.name)

    async def extend(self) -> None:
        held = self.w.inflight()
        if not held:
            return
        res = await self.w.link.run(self.w.broker.extend(held))
        if res is not None:
            log.debug("extended %d lease(s); lost %d, cancel asked for %d", len(held),
                      len(res[0]), len(res[1]))  # fmt: skip
            self.news(*res)

    def news(self, lost: Sequence[str], cancelled: Sequence[str]) -> None:
        """Stop jobs whose lease moved on, and jobs whose cancellation was requested."""
        running = self.w.running
        for job_id in lost:
            r = running.get(job_id)
            if r is not None and r.task is not None and not r.task.done():
                r.lost = True
                log.warning("lease of job %s was lost; stopping it", job_id)
                self._stop(r)
        for job_id in cancelled:
            r = running.get(job_id)
            if r is not None and r.task is not None and not r.task.done():
                r.cancel_requested = True
                self._stop(r)

    def _stop(self, r: Running) -> None:
        if r.in_thread:  # its thread records the outcome once the code stopped
            self.w.processors.interrupt(r)
        else:
            r.task.cancel()  # type: ignore[union-attr]
