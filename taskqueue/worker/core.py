"""The worker: one process, one asyncio event loop, up to ``max_concurrent_tasks`` jobs at once.

Duties (each part in its own module, joined here):
1. ``fetcher.py``: fetch jobs only for free slots; block on wake lists when idle.
2. ``executor.py``: run async tasks as coroutines, and time-limited sync tasks in a thread
   pool; ``processors.py``: run other sync tasks on threads that acknowledge in batches.
3. ``acker.py``: record successes in batches and failures one by one.
4. ``leases.py``: stop jobs whose lease was lost or whose cancel was asked; standalone, also
   extend leases and recover expired ones (under the pre-fork master the master does that).
5. ``link.py``: the Redis connection and its outage policy.
6. Here: the slots and the held jobs, ``stop()`` (fetch nothing more, let running jobs finish
   within the grace period, then give the rest back to their queues without spending an
   attempt), and the ``WorkerHooks`` calls that let the pre-fork child observe held jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence

from .. import logs, queue_names
from ..broker import Broker, Leased
from ..client import TaskQueue
from ..connection import RedisSettings
from ..jobs import check_queue
from ..keys import Keys
from ..redact import redact_url
from ..registry import Registry, registry
from ..supervise import supervised
from .acker import Acker
from .executor import Executor
from .fetcher import Fetcher
from .hooks import WorkerHooks
from .leases import LeaseKeeper
from .link import RedisLink
from .perf import PerfWindow
from .perf import run as perf_loop
from .processors import Processors
from .running import Running

log = logging.getLogger("taskqueue.worker")
#: Seconds the worker waits for its cancelled background tasks when it stops.
TIMER_STOP_WAIT = 5.0
#: How often a suspect waiting to run alone checks that the other jobs have finished (s).
ALONE_POLL = 0.02


class Worker:
    """Consume jobs from ``queues`` (priority order) until ``stop()``."""

    def __init__(
        self,
        tq: TaskQueue | RedisSettings | str | None = None,
        queues: Sequence[str] | None = None,
        max_concurrent_tasks: int = 10,
        *,
        name: str | None = None,
        registry: Registry = registry,
        grace_period: float = 30.0,
        standalone: bool = True,
        hooks: WorkerHooks | None = None,
    ) -> None:
        if isinstance(tq, TaskQueue):
            settings, keys, broker = tq.settings, tq.keys, tq.broker
        else:
            settings, keys = RedisSettings.of(tq), Keys()
            broker = Broker(keys)
        self.settings = settings
        self.url = settings.url
        self.keys: Keys = keys
        self.broker: Broker = broker
        self.queues = [check_queue(q) for q in (queues or queue_names.ALL)]
        if max_concurrent_tasks < 1:
            raise ValueError("max_concurrent_tasks must be at least 1")
        self.max_concurrent = max_concurrent_tasks
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.registry = registry
        self.grace_period = grace_period
        self.standalone = standalone
        self.hooks = hooks or WorkerHooks()
        #: Jobs held (leased, outcome not yet recorded), by id.
        self.running: dict[str, Running] = {}
        #: Slots taken by jobs whose code is still running.
        self.busy = 0
        #: Suspects held whose code has not finished: while there is one, nothing is fetched
        #: and it runs alone (a job whose worker died while it ran may kill this one too).
        self.suspects = 0
        self.processed = 0
        #: Outcomes recorded so far (burst mode compares it across a fetch).
        self.settled_count = 0
        self.quiet = False
        self._stop_requested = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.wakeup = asyncio.Event()
        #: Set by stop() and quiet only: it ends an idle blocking wait (a freed slot does not).
        self.halt = asyncio.Event()
        self.link = RedisLink(settings, lambda: self.stopping)
        self.fetcher = Fetcher(self)
        self.executor = Executor(self, max_concurrent_tasks)
        self.acker = Acker(self)
        self.processors = Processors(self, max_concurrent_tasks)
        self.leases = LeaseKeeper(self)
        #: Performance window (logging.enable_performance_monitoring), None when off.
        self.perf: PerfWindow | None = None

    # -- public --------------------------------------------------------------------------------
    def run(self, burst: bool = False) -> None:
        """Work until ``stop()`` (or, with ``burst``, until nothing is left to do soon)."""
        asyncio.run(self.run_async(burst))

    def stop(self, grace_period: float | None = None) -> None:
        """Ask the worker to stop gracefully (within ``grace_period`` if given: 0 gives held
        jobs back at once). Safe from any thread or a signal handler."""
        if grace_period is not None:
            self.grace_period = grace_period
        self._stop_requested.set()
        self._wake_threadsafe()

    @property
    def stopping(self) -> bool:
        return self._stop_requested.is_set()

    def set_quiet(self, on: bool) -> None:
        """Quiet: fetch nothing new (running jobs go on). Call on the worker's loop."""
        self.quiet = on
        self.wakeup.set()
        self.halt.set()

    def inflight(self) -> list[tuple[str, str, str]]:
        """(job id, queue, token) of every job held: what a master extends for this worker."""
        return [(r.job.id, r.job.queue, r.job.token) for r in self.running.values()]

    def on_lease_news(self, lost: Sequence[str], cancelled: Sequence[str]) -> None:
        """Stop jobs whose lease moved on, and jobs whose cancellation was requested."""
        self.leases.news(lost, cancelled)

    async def run_async(self, burst: bool = False) -> None:
        self._loop = asyncio.get_running_loop()
        self.wakeup = asyncio.Event()
        self.halt = asyncio.Event()
        if self.stopping:  # stop() came before the loop existed
            self.wakeup.set()
            self.halt.set()
        self.link.open()
        timers = []
        if self.standalone:
            timers = [asyncio.create_task(supervised("lease keeper", self.leases.run))]
        interval = logs.performance_interval()
        if interval is not None:
            self.perf = PerfWindow(self.max_concurrent)
            timers.append(
                asyncio.create_task(
                    supervised("performance log", lambda: perf_loop(self, interval))
                )
            )
        log.info("worker %s started: namespace %s on %s, queues=%s, concurrency=%d", self.name,
                 self.keys.namespace, redact_url(self.url), ",".join(self.queues),
                 self.max_concurrent)  # fmt: skip
        try:
            await self.fetcher.run(burst)
        finally:
            await self.shutdown()
            for t in timers:
                t.cancel()
            if timers:
                # Bounded: a background task must never hold up the worker's stop.
                _, pending = await asyncio.wait(timers, timeout=TIMER_STOP_WAIT)
                if pending:
                    log.warning("%d background task(s) did not stop within %gs of their "
                                "cancel; stopping without them", len(pending), TIMER_STOP_WAIT)  # fmt: skip
            if self.standalone:
                await self.leases.unpublish()
            await self.link.close()
            self.executor.shutdown()
            self.processors.close()
            log.info("worker %s stopped after %d jobs", self.name, self.processed)

    # -- the held jobs (called by the parts) -----------------------------------------------------
    def start(self, job: Leased) -> None:
        """Take a slot for a fetched job and start running it."""
        r = Running(job, time.monotonic())
        self.running[job.id] = r
        self.busy += 1
        if job.stalls:
            self.suspects += 1
        if self.executor.fast_path(job):
            r.in_thread = True
            r.task = asyncio.get_running_loop().create_future()
            r.code = True  # a processor thread takes it now (suspects never come this way)
            self.processors.submit(r)
            self.hooks.job_started(r)
            self.hooks.code_started(r)
        else:
            r.task = asyncio.ensure_future(self.executor.execute(r))
            self.hooks.job_started(r)

    def adopt(self, r: Running) -> None:
        """Hold a job that a processor thread leased after its idle wait and runs already
        (``thread_wait.py``), as ``start`` holds one it hands to a thread."""
        self.running[r.job.id] = r
        self.busy += 1
        r.task = asyncio.get_running_loop().create_future()
        self.hooks.job_started(r)
        self.hooks.code_started(r)

    def slot_freed(self, r: Running) -> None:
        """The task's code has finished: its slot is free (the lease is kept until recorded)."""
        self.busy -= 1
        self.processed += 1
        r.code = False
        if r.job.stalls:
            self.suspects -= 1
        self.wakeup.set()

    async def alone(self, r: Running) -> None:
        """Wait until suspect ``r`` is the only job held here, its code running or its outcome
        on the way (poison isolation: if it kills the process again, no innocent job dies with
        it, nor a finished one whose ack has not landed yet)."""
        if len(self.running) > 1:
            log.info("job %s lost its worker before: waiting to run it alone", r.job.id)
        while len(self.running) > 1:
            await asyncio.sleep(ALONE_POLL)

    def settled(self, r: Running) -> None:
        """The job's outcome is recorded in Redis (or abandoned): it is no longer held."""
        self.running.pop(r.job.id, None)
        self.settled_count += 1
        self.wakeup.set()
        if r.in_thread and not r.task.done():  # type: ignore[union-attr]
            r.task.set_result(None)  # type: ignore[union-attr]
        self.hooks.job_settled(r)

    def forget(self, r: Running) -> None:
        self.slot_freed(r)
        self.settled(r)

    # -- shutdown ------------------------------------------------------------------------------
    async def shutdown(self) -> None:
        """Let running jobs finish within the grace period, give the rest back, then wait for
        every outcome to land."""
        tasks = [r.task for r in self.running.values() if r.task is not None and not r.task.done()]
        if tasks:
            log.info("waiting up to %gs for %d running job(s)", self.grace_period, len(tasks))
            await asyncio.wait(tasks, timeout=self.grace_period)
        leftover = [r for r in self.running.values() if r.task is not None and not r.task.done()]
        if leftover:
            held = [(r.job.id, r.job.queue, r.job.token) for r in leftover]
            n = await self.link.run_retry(self.broker.release(held), attempts=5)
            log.warning("released %s unfinished job(s) back to their queues", n)
            for r in leftover:
                if r.in_thread:  # stop its code; whatever it reports later is dropped
                    r.lost = True
                    self.processors.interrupt(r)
                r.task.cancel()  # type: ignore[union-attr]
            await asyncio.gather(*(r.task for r in leftover), return_exceptions=True)
        await self.acker.drain()

    def _wake_threadsafe(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._halt)

    def _halt(self) -> None:
        self.wakeup.set()
        self.halt.set()
