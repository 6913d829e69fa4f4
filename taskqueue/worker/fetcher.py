"""The fetcher: lease jobs for free slots, and wait without polling when there are none.

Duties:
1. Fetch a batch of jobs only for free slots (one script call leases them all) and hand each
   to the worker (``Worker.start``); while a backlog drains, wait until half the slots are
   free. After a short fetch (the queues ran dry) go straight to the idle wait: one fetch per
   job at a low rate, not two.
2. When idle, block on the queues' wake lists (BLPOP, at most ``max_block``) instead of polling,
   with the fetch sent right behind the wait on the same connection: Redis leases the job the
   moment a wake token arrives, with no round trip between (not on a cluster: there the fetch
   follows the wait). Wake early for ``stop()`` or quiet (through the worker's own halt list,
   so that the fetch behind the wait leases nothing), or a scheduled job coming due. A slot
   freed meanwhile does not end the wait: the fetch before it found nothing, and new work
   pushes a wake token.
   (Ending it cost a dropped connection, a reconnect and an empty fetch per finished job: at
   200 jobs/s, 0.84 new connections and 2.8 fetch calls per job.)
   In a worker with sync tasks, the first wait after work (up to ``HOT_WAIT``) runs on a
   processor thread, which starts a sync job its fetch leased itself (``thread_wait.py``);
   after a fetch that brought jobs, the loop lets a thread take the queued sync jobs before it
   waits again (``Processors.handoff``).
3. In burst mode, return once nothing is running and a fetch taken after every outcome landed
   found nothing due within a second.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import TYPE_CHECKING, Any

from ..broker import FetchResult
from ..connection import is_cluster

if TYPE_CHECKING:
    from .core import Worker

log = logging.getLogger("taskqueue.worker")
debug = functools.partial(log.isEnabledFor, logging.DEBUG)
#: An idle worker fetches after this many empty blocking waits even without a wake token.
SAFETY_FETCH_EVERY = 6
#: Seconds to wait for Redis to end our own idle wait (stop, quiet) before dropping it.
HALT_WAIT = 2.0
#: Longest idle wait on a processor thread (s): the first wait after work. Past it, the wait
#: moves to the loop and the threads exit (``processors.IDLE_EXIT``), as before.
HOT_WAIT = 0.25


class Fetcher:
    """Leases jobs for ``worker`` until it stops."""

    def __init__(self, worker: Worker) -> None:
        self.w = worker
        self.fetches = 0
        #: Send the fetch behind the idle wait on one connection (not on a cluster, where
        #: redis-py routes command by command).
        self.pipelined = False
        #: True while a pipelined idle wait is in flight; jobs given back unstarted (quiet or
        #: stop came as the fetch behind the wait leased them).
        self.waiting = False
        self.given_back = 0
        #: Pipelined, and the worker runs sync tasks: a processor thread does the idle wait
        #: and starts a sync job it leases itself (``thread_wait.py``), while work came within
        #: ``HOT_WAIT`` (``hot``); a longer idle spell waits on the loop.
        self.threaded = False
        self.hot = True

    async def run(self, burst: bool) -> None:
        w = self.w
        wakeup = w.wakeup
        self.pipelined = not is_cluster(w.link.redis)
        self.threaded = self.pipelined and any(
            spec is not None and not spec.is_async
            for spec in map(w.registry.get, w.registry.names())
        )
        #: After a fetch that filled every slot it asked for (a backlog), wait for this many free
        #: slots before fetching again: fewer, larger fetches (a call costs about the same in
        #: Redis and here whatever its size). After a short fetch, any free slot fetches.
        refill = max(1, w.max_concurrent // 2)
        backlog = False
        # The fetch behind the last idle wait: result, free slots, settled count, and the id of
        # the job a processor thread took from it itself (or None).
        got: tuple[FetchResult, int, int, str | None] | None = None
        while got is not None or not w.stopping:
            idle_wake = got is not None
            if got is None:
                free = w.max_concurrent - w.busy
                if free <= 0 or w.quiet or w.suspects or (backlog and free < refill and w.busy):
                    wakeup.clear()
                    await wakeup.wait()
                    continue
                fetch, settled_before = self._fetch(free, halt=False)
                res = await w.link.run(fetch)
                inline = None
                if res is None:
                    continue
            else:
                (res, free, settled_before, inline), got = got, None
                if res.jobs and (w.stopping or w.quiet):
                    # Leased in the instant between stop() or quiet and the halt reaching
                    # Redis: give them back unstarted (no attempt spent).
                    held = [(j.id, j.queue, j.token) for j in res.jobs if j.id != inline]
                    await w.link.run_retry(w.broker.release(held), attempts=5)
                    self.given_back += len(held)
                    continue
            if debug():
                log.debug("fetch %d: leased %d of %d free slot(s)%s", self.fetches,
                          len(res.jobs), free, "".join(f"; {j.task}[{j.id}] from {j.queue}"
                                                       for j in res.jobs))  # fmt: skip
            backlog = len(res.jobs) == free
            for job in res.jobs:
                if job.id != inline:
                    w.start(job)
            if idle_wake and res.jobs:
                # Start the jobs before setting up the next wait (0.06 ms of the loop's time):
                # a thread takes the sync ones, and the async ones take their first step.
                w.processors.handoff()
                await asyncio.sleep(0)
            if w.stopping:
                return
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
            got = await self._idle(due_in)

    async def _idle(self, due_in: float | None) -> tuple[FetchResult, int, int, str | None] | None:
        """Block until there may be work: a wake token, a scheduled job coming due, stop() or
        quiet. Every change that makes work available pushes a wake token, so a block that
        times out without one needs no fetch (a safety fetch still runs once a minute).
        Pipelined, the fetch behind the wait always runs: its result, free slots and settled
        count are returned. So that a timeout costs one empty fetch a minute there too, not one
        per ``max_block``, the pipelined wait lasts up to ``SAFETY_FETCH_EVERY`` blocks."""
        max_block = self.w.link.max_block
        if self.pipelined:
            max_block *= SAFETY_FETCH_EVERY
        due_at = None if due_in is None else time.monotonic() + due_in
        for _ in range(1 if self.pipelined else SAFETY_FETCH_EVERY):
            left = max_block if due_at is None else due_at - time.monotonic()
            if left <= 0:
                return None
            timeout = max(0.005, min(left, max_block))
            if self.pipelined:
                return await self._wait_then_fetch(timeout)
            if await self._block(timeout):
                return None
        return None

    def _fetch(self, free: int, halt: bool) -> tuple[Any, int]:
        """The next fetch call (its token names this worker and the fetch's number) and the
        count of outcomes settled before it (burst mode compares)."""
        w = self.w
        self.fetches += 1
        call = w.broker.fetch(w.queues, free, f"{w.name}:{self.fetches}", w.name, halt=halt)
        return call, w.settled_count

    async def _wait_then_fetch(
        self, timeout: float
    ) -> tuple[FetchResult, int, int, str | None] | None:
        """The idle wait with the fetch sent right behind it on the same connection: when a
        wake token comes, Redis leases the job at once (one hop instead of two). stop() or
        quiet end the wait through the worker's own halt list; the fetch then finds the second
        item pushed there and leases nothing (``fetch.lua`` ARGV[8]). Never cancelled with a
        fetch pending, unless Redis does not answer the halt."""
        w = self.w
        w.halt.clear()
        if w.stopping or w.quiet:  # raced with the clear() above: its halt may be gone
            return None
        free = w.max_concurrent - w.busy
        fetch, settled_before = self._fetch(free, halt=True)
        halt_key = w.keys.halt(w.name)
        keys = [w.keys.wake(q) for q in w.queues] + [halt_key]
        thread = None
        if self.threaded and self.hot:
            timeout = min(timeout, HOT_WAIT)
            thread = w.processors.wait_then_fetch(keys, timeout, fetch)
        pair: asyncio.Future[Any] = (
            thread.future
            if thread is not None
            else asyncio.ensure_future(w.link.call.after_wait(keys, timeout, fetch))
        )
        stop = asyncio.ensure_future(w.halt.wait())
        self.waiting = True
        try:
            done, _ = await asyncio.wait({pair, stop}, return_when=asyncio.FIRST_COMPLETED)
            if pair not in done:
                await self._push_halt(halt_key)
                done, _ = await asyncio.wait({pair}, timeout=HALT_WAIT)
                if pair not in done:
                    pair.cancel()  # Redis did not answer: drop the connection (leases lapse)
                    if thread is not None:
                        thread.abort()
        finally:
            self.waiting = False
            stop.cancel()
        try:
            popped, res, *rest = await pair
        except asyncio.CancelledError:
            return None
        except Exception as exc:  # noqa: BLE001 - classified and logged by the link
            await w.link.outage(exc, "BLPOP of the wake lists and fetch")
            return None
        w.link.reconnected()
        self.hot = bool(popped or res.jobs)
        if debug():
            why = f"wake token on {popped[0].decode()}" if popped else f"nothing in {timeout:.1f}s"
            log.debug("idle wait ended: %s", why)
        return res, free, settled_before, rest[0] if rest else None

    async def _push_halt(self, halt_key: str) -> None:
        """End our own blocking wait: two items, one for the wait to pop, one for the fetch
        behind it to find (and then lease nothing). They expire if nobody takes them."""
        client = self.w.link.redis
        try:
            pipe = client.pipeline(transaction=False)
            pipe.lpush(halt_key, 1, 1)
            pipe.pexpire(halt_key, 60_000)
            await asyncio.wait_for(pipe.execute(), HALT_WAIT)
        except Exception as exc:  # noqa: BLE001 - the wait is cancelled next; logged here
            log.debug("could not end the idle wait through Redis: %r", exc)

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
