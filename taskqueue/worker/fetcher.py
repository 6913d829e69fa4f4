"""The fetcher: lease jobs for free slots, and wait without polling when there are none.

Duties:
1. Fetch a batch of jobs only for free slots (one script call leases them all) and hand each
   to the worker (``Worker.start``); while a backlog drains, wait until half the slots are
   free. After a short fetch (the queues ran dry) go straight to the idle wait: one fetch per
   job at a low rate, not two.
2. When idle, block on the queues' wake lists (BLPOP, at most ``max_block``) instead of polling;
   wake early for ``stop()``, quiet, or a scheduled job coming due. A slot freed meanwhile does
   not end the wait: the fetch before it found nothing, and new work pushes a wake token.
   (Ending it cost a dropped connection, a reconnect and an empty fetch per finished job: at
   200 jobs/s, 0.84 new connections and 2.8 fetch calls per job.)
3. In burst mode, return once nothing is running and a fetch taken after every outcome landed
   found nothing due within a second.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .core import Worker

log = logging.getLogger("taskqueue.worker")
debug = functools.partial(log.isEnabledFor, logging.DEBUG)
#: An idle worker fetches after this many empty blocking waits even without a wake token.
SAFETY_FETCH_EVERY = 6


class Fetcher:
    """Leases jobs for ``worker`` until it stops."""

    def __init__(self, worker: Worker) -> None:
        self.w = worker
        self.fetches = 0

    async def run(self, burst: bool) -> None:
        w = self.w
        wakeup = w.wakeup
        #: After a fetch that filled every slot it asked for (a backlog), wait for this many free
        #: slots before fetching again: fewer, larger fetches (a call costs about the same in
        #: Redis and here whatever its size). After a short fetch, any free slot fetches.
        refill = max(1, w.max_concurrent // 2)
        backlog = False
        while not w.stopping:
            free = w.max_concurrent - w.busy
            if free <= 0 or w.quiet or w.suspects or (backlog and free < refill and w.busy):
                wakeup.clear()
                await wakeup.wait()
                continue
            self.fetches += 1
            token = f"{w.name}:{self.fetches}"
            settled_before = w.settled_count
            res = await w.link.run(w.broker.fetch(w.queues, free, token, w.name))
            if res is None:
                continue
            if debug():
                log.debug("fetch %d: leased %d of %d free slot(s)%s", self.fetches,
                          len(res.jobs), free, "".join(f"; {j.task}[{j.id}] from {j.queue}"
                                                       for j in res.jobs))  # fmt: skip
            backlog = len(res.jobs) == free
            for job in res.jobs:
                w.start(job)
            # A short fetch found every queue empty (one it left non-empty kept a wake token):
            # wait idle at once instead of asking again for nothing.
            if res.jobs and (backlog or burst or w.suspects):
                continue
            due_in = (res.next_due_ms - res.now_ms) / 1000 if res.next_due_ms >= 0 else None
            if burst and (due_in is None or due_in > 1.0):
                # Exit only on a view of Redis taken after every outcome was recorded: a fail
                # that landed while this fetch ran may have scheduled a retry it did not see.
                if not w.running and w.settled_count == settled_before:
                    return
                if not w.running:
                    continue
                wakeup.clear()
                await wakeup.wait()
                continue
            await self._idle(due_in)

    async def _idle(self, due_in: float | None) -> None:
        """Block until there may be work: a wake token, a scheduled job coming due, stop() or
        quiet. Every change that makes work available pushes a wake token, so a block that
        times out without one needs no fetch (a safety fetch still runs once a minute)."""
        max_block = self.w.link.max_block
        due_at = None if due_in is None else time.monotonic() + due_in
        for _ in range(SAFETY_FETCH_EVERY):
            left = max_block if due_at is None else due_at - time.monotonic()
            if left <= 0 or await self._block(max(0.005, min(left, max_block))):
                return

    async def _block(self, timeout: float) -> bool:
        """Wait for a wake token on any of our queues, for ``stop()`` or quiet, or for the
        timeout; False only when the timeout passed with nothing to wake for."""
        w = self.w
        w.halt.clear()
        if w.stopping or w.quiet:  # raced with the clear() above: its halt may be gone
            return True
        wake_keys = [w.keys.wake(q) for q in w.queues]
        pop = asyncio.ensure_future(w.link.redis.blpop(wake_keys, timeout=timeout))
        stop = asyncio.ensure_future(w.halt.wait())
        done, _ = await asyncio.wait({pop, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if pop not in done:
            pop.cancel()
        try:
            got = await pop
            w.link.reconnected()
            if debug():
                why = (
                    f"wake token on {got[0].decode()}"
                    if got
                    else ("stop or quiet" if stop in done else f"nothing in {timeout:.1f}s")
                )
                log.debug("idle wait ended: %s", why)
            return got is not None or stop in done
        except asyncio.CancelledError:
            return True
        except Exception as exc:  # noqa: BLE001 - classified and logged by the link
            await w.link.outage(exc, "BLPOP of the wake lists")
            return True
