"""The idle wait on a processor thread, so that a sync job starts in the thread that woke.

Duties:
1. ``ThreadWait`` is the fetcher's pipelined idle wait (BLPOP of the wake lists, the fetch sent
   right behind it on one connection; see ``fetcher.py``), run by a sync processor thread on
   a connection of the process's bounded sync pool instead of by the event loop.
2. When the fetch leases a job that may run on a processor thread (``Executor.fast_path``), the
   thread that woke runs it at once, and tells the loop afterwards (``Worker.adopt``): the job
   starts on the one wake-up of the thread Redis's reply woke. Through the loop it took two
   (the loop's, then a processor thread's once the loop let go of the GIL): 0.2 ms of the
   0.45 ms from enqueue to start at 200 jobs/s (``bench/latency_interleaved.py``).
3. Every other leased job goes to the loop as before, with the fetch's result.
4. ``abort()``: the loop drops the connection under the thread when Redis did not answer the
   halt (stop, quiet) in time, as it cancels its own wait.
Used only where the loop's wait would be pipelined (not on a cluster) and the worker runs
sync tasks; an async-only worker waits on the loop, where its jobs run.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

from ..broker import Call, FetchResult
from .running import Running

if TYPE_CHECKING:
    from .processors import Processors

#: What the loop gets: the BLPOP reply, the fetch's result, and the id of the job the thread
#: runs itself (already adopted by the worker), or None.
Outcome = tuple[Any, FetchResult, str | None]


class ThreadWait:
    """One idle wait, queued to the processor threads like a job."""

    def __init__(self, keys: list[str], timeout: float, fetch: Call) -> None:
        self.keys = keys
        self.timeout = timeout
        self.fetch = fetch
        self.future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._conn: Any = None
        self._lock = threading.Lock()

    def abort(self) -> None:
        """Drop the connection the thread waits on (called on the loop)."""
        with self._lock:
            conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.disconnect()

    def _hold(self, conn: Any) -> None:
        with self._lock:
            self._conn = conn

    # -- in the processor thread ---------------------------------------------------------------
    def run(self, procs: Processors) -> None:
        w, loop = procs.w, procs.loop
        try:
            popped, res = procs.runner.after_wait(self.keys, self.timeout, self.fetch, self._hold)
        except BaseException as exc:  # noqa: BLE001 - the loop classifies and logs it
            loop.call_soon_threadsafe(self._failed, exc)
            return
        inline = None
        if not (w.stopping or w.quiet):
            job = next((j for j in res.jobs if w.executor.fast_path(j)), None)
            if job is not None:
                inline = Running(job, time.monotonic(), in_thread=True, code=True)
        loop.call_soon_threadsafe(self._landed, w, popped, res, inline)
        if inline is not None:
            procs.process(inline)

    # -- on the loop ---------------------------------------------------------------------------
    def _failed(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)

    def _landed(self, w: Any, popped: Any, res: FetchResult, inline: Running | None) -> None:
        if inline is not None:
            w.adopt(inline)  # whatever became of the wait: the thread runs it
        rest = [j for j in res.jobs if inline is None or j.id != inline.job.id]
        if not self.future.done():
            self.future.set_result((popped, res, inline.job.id if inline else None))
        elif rest:  # the fetcher gave up on this wait (Redis did not answer in time)
            held = [(j.id, j.queue, j.token) for j in rest]
            asyncio.ensure_future(w.link.run_retry(w.broker.release(held), attempts=5))
