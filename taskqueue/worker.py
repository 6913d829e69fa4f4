"""The worker: one process, one asyncio event loop, up to ``max_concurrent_tasks`` jobs at once.

Duties:
1. Fetch a batch of jobs only for free slots (one script call leases them all).
2. Run async tasks as coroutines and sync tasks in a thread pool; stop an attempt at its timeout.
3. Acknowledge successes in batches (one script call for every result ready at that moment) and
   record failures (retry with backoff, or the dead letter).
4. When idle, block on the queues' wake lists (BLPOP, at most 10 s) instead of polling.
5. Keep the leases of running jobs alive; stop jobs whose lease was lost or whose cancel was asked.
6. Send undecodable payloads and unknown task names to the dead letter, and keep going.
7. On ``stop()``: fetch nothing more, let running jobs finish within the grace period, then give
   the rest back to their queues without spending an attempt.

Run alone it also recovers expired leases of its queues. Under the pre-fork master the master
extends leases and recovers instead (``standalone=False``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ctypes
import functools
import logging
import os
import random
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio
import redis.exceptions

from . import logs, queue_names
from .backoff import backoff_ms
from .broker import Broker, Leased
from .client import TaskQueue
from .connection import MAX_BLOCK, RedisSettings, connect_async
from .context import JobContext, set_current
from .errors import Reject, Retry, SoftTimeLimitExceeded
from .jobs import check_queue
from .keys import Keys
from .redact import redact_text
from .registry import Registry, TaskOptions, registry
from .runner import AsyncRunner
from .serialization import MalformedPayload, decode_call, encode_result

log = logging.getLogger("taskqueue.worker")
_DEFAULT_OPTIONS = TaskOptions()
#: Reconnect backoff after a Redis error (s): doubles from the first value to the second.
RECONNECT = (0.1, 5.0)
#: An idle worker fetches after this many empty blocking waits even without a wake token.
SAFETY_FETCH_EVERY = 6


@dataclass(slots=True)
class Running:
    """A leased job this worker holds, from fetch until its ack or fail is recorded."""

    job: Leased
    started: float
    task: asyncio.Task | None = None
    lost: bool = False
    #: Thread running this job's sync code while it has a time limit (for the soft limit).
    thread: int | None = None
    cancel_requested: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


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
        self.running: dict[str, Running] = {}
        self.busy = 0
        self.processed = 0
        self.quiet = False
        self._acks: list[tuple[Running, bytes]] = []
        self._ack_task: asyncio.Task | None = None
        self._fetches = 0
        self._settled_count = 0
        self._stop_requested = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._executor = ThreadPoolExecutor(max_concurrent_tasks, thread_name_prefix="tq-task")
        self._outage_since: float | None = None

    # -- public --------------------------------------------------------------------------------
    def run(self, burst: bool = False) -> None:
        """Work until ``stop()`` (or, with ``burst``, until nothing is left to do soon)."""
        asyncio.run(self.run_async(burst))

    def stop(self) -> None:
        """Ask the worker to stop gracefully. Safe from any thread or a signal handler."""
        self._stop_requested.set()
        loop, wakeup = self._loop, self._wakeup
        if loop is not None and wakeup is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wakeup.set)

    @property
    def stopping(self) -> bool:
        return self._stop_requested.is_set()

    def inflight(self) -> list[tuple[str, str, str]]:
        """(job id, queue, token) of every job held: what a master extends for this worker."""
        return [(r.job.id, r.job.queue, r.job.token) for r in self.running.values()]

    async def run_async(self, burst: bool = False) -> None:
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self.redis = connect_async(self.settings, name="worker")
        self.call = AsyncRunner(self.redis)
        timers = []
        if self.standalone:
            timers = [asyncio.create_task(self._lease_timer())]
        log.info("worker %s started, queues=%s, concurrency=%d", self.name, ",".join(self.queues),
                 self.max_concurrent)  # fmt: skip
        try:
            await self._fetch_loop(burst)
        finally:
            await self._shutdown()
            for t in timers:
                t.cancel()
            await asyncio.gather(*timers, return_exceptions=True)
            await self.redis.aclose()
            self._executor.shutdown(wait=False, cancel_futures=True)
            log.info("worker %s stopped after %d jobs", self.name, self.processed)

    # -- fetching ------------------------------------------------------------------------------
    async def _fetch_loop(self, burst: bool) -> None:
        assert self._wakeup is not None
        while not self.stopping:
            free = self.max_concurrent - self.busy
            if free <= 0 or self.quiet:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            self._fetches += 1
            token = f"{self.name}:{self._fetches}"
            settled_before = self._settled_count
            res = await self._redis(self.broker.fetch(self.queues, free, token, self.name))
            if res is None:
                continue
            for job in res.jobs:
                self._start(job)
            if res.jobs:
                continue
            due_in = (res.next_due_ms - res.now_ms) / 1000 if res.next_due_ms >= 0 else None
            if burst and (due_in is None or due_in > 1.0):
                # Exit only on a view of Redis taken after every outcome was recorded: a fail
                # that landed while this fetch ran may have scheduled a retry it did not see.
                if not self.running and self._settled_count == settled_before:
                    return
                if not self.running:
                    continue
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._idle(due_in)

    async def _idle(self, due_in: float | None) -> None:
        """Block until there may be work: a wake token, a scheduled job coming due, stop() or a
        free slot. Every change that makes work available pushes a wake token, so a block that
        times out without one needs no fetch (a safety fetch still runs once a minute)."""
        due_at = None if due_in is None else time.monotonic() + due_in
        for _ in range(SAFETY_FETCH_EVERY):
            left = MAX_BLOCK if due_at is None else due_at - time.monotonic()
            if left <= 0 or await self._block(max(0.005, min(left, MAX_BLOCK))):
                return

    async def _block(self, timeout: float) -> bool:
        """Wait for a wake token on any of our queues, for ``stop()``, or for the timeout;
        False only when the timeout passed with nothing to wake for."""
        assert self._wakeup is not None
        self._wakeup.clear()
        if self.stopping:  # stop() raced with the clear() above: its wakeup may be gone
            return True
        wake_keys = [self.keys.wake(q) for q in self.queues]
        pop = asyncio.ensure_future(self.redis.blpop(wake_keys, timeout=timeout))
        stop = asyncio.ensure_future(self._wakeup.wait())
        done, _ = await asyncio.wait({pop, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if pop not in done:
            pop.cancel()
        try:
            got = await pop
            self._reconnected()
            return got is not None or stop in done
        except asyncio.CancelledError:
            return True
        except redis.exceptions.RedisError as exc:
            await self._outage(exc)
            return True

    # -- running jobs --------------------------------------------------------------------------
    def _start(self, job: Leased) -> None:
        r = Running(job, time.monotonic())
        self.running[job.id] = r
        self.busy += 1
        r.task = asyncio.ensure_future(self._execute(r))

    async def _execute(self, r: Running) -> None:
        job = r.job
        spec = self.registry.get(job.task)
        opts = spec.options if spec else _DEFAULT_OPTIONS
        set_current(JobContext(job.id, job.task, job.queue, job.attempts, self.name, job.token))
        logs.lifecycle(log, "started", task_id=job.id, task_name=job.task, queue=job.queue,
                       attempt=job.attempts, worker=self.name)  # fmt: skip
        try:
            if spec is None:
                raise Reject(f"unknown task {job.task!r}: no task of that name is registered in "
                             f"this worker (imported: {', '.join(self.registry.names()) or 'none'})")  # fmt: skip
            try:
                args, kwargs = decode_call(job.payload)
            except MalformedPayload as exc:
                raise Reject(f"malformed payload for task {job.task!r}: {exc}") from None
            if spec.is_async:
                work = spec.func(*args, **kwargs)
            else:
                call = functools.partial(contextvars.copy_context().run, spec.func, *args,
                                         **kwargs)  # fmt: skip
                if job.timeout_ms:
                    call = functools.partial(_in_thread, r, call)
                work = self._loop.run_in_executor(self._executor, call)  # type: ignore[union-attr]
            if job.timeout_ms:
                result = await self._with_timeout(work, job.timeout_ms / 1000, r)
            else:
                result = await work
            payload = encode_result(result)
        except asyncio.CancelledError:
            if r.cancel_requested:
                await self._fail(r, opts, "Cancelled: cancel requested", "", retry=False)
            elif r.lost:
                self._forget(r)
            else:
                raise  # shutdown: the job is released by _shutdown
        except _AttemptTimeout as exc:
            await self._fail(r, opts, f"TimeoutError: {exc}", "", event="timeout")
        except Retry as exc:
            delay = None if exc.delay is None else int(exc.delay * 1000)
            await self._fail(r, opts, f"Retry: {exc.reason}", "", delay_ms=delay)
        except Reject as exc:
            await self._fail(r, opts, f"Reject: {exc}", "", retry=False, exc=exc)
        except Exception as exc:
            err = redact_text(f"{type(exc).__name__}: {exc}")
            tb = redact_text("".join(traceback.format_exception(exc)))
            await self._fail(r, opts, err, tb, exc=exc)
        else:
            self._done_running(r)
            self._acks.append((r, payload))
            if self._ack_task is None:
                self._ack_task = asyncio.ensure_future(self._flush_acks())

    async def _with_timeout(self, work: Any, seconds: float, r: Running) -> Any:
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=seconds)
        if task not in done:
            task.cancel()
            _interrupt_thread(r)
            raise _AttemptTimeout(f"task exceeded its time limit of {seconds:g}s")
        return task.result()

    def _done_running(self, r: Running) -> None:
        """The task's code has finished: its slot is free (the lease is kept until recorded)."""
        self.busy -= 1
        self.processed += 1
        if self._wakeup is not None:
            self._wakeup.set()

    def _settled(self, r: Running) -> None:
        """The job's outcome is recorded in Redis (or abandoned): it is no longer held."""
        self.running.pop(r.job.id, None)
        self._settled_count += 1
        if self._wakeup is not None:
            self._wakeup.set()

    def _forget(self, r: Running) -> None:
        self._done_running(r)
        self._settled(r)

    async def _flush_acks(self) -> None:
        try:
            while self._acks:
                batch, self._acks = self._acks, []
                ok = await self._redis_retry(self.broker.ack([(r.job, p) for r, p in batch]))
                for (r, _), acked in zip(batch, ok or [False] * len(batch), strict=True):
                    self._settled(r)
                    ms = (time.monotonic() - r.started) * 1000
                    if acked:
                        logs.lifecycle(log, "succeeded", task_id=r.job.id, task_name=r.job.task,
                                       queue=r.job.queue, attempt=r.job.attempts,
                                       worker=self.name, duration_ms=ms)  # fmt: skip
                    else:
                        log.warning("job %s finished after its lease was lost; result discarded "
                                    "(duplicate execution)", r.job.id)  # fmt: skip
        finally:
            self._ack_task = None

    async def _fail(
        self,
        r: Running,
        opts: TaskOptions,
        error: str,
        tb: str,
        *,
        retry: bool = True,
        delay_ms: int | None = None,
        event: str | None = None,
        exc: BaseException | None = None,
    ) -> None:
        self._done_running(r)
        job = r.job
        if delay_ms is None:
            delay_ms = backoff_ms(job.failures + 1, opts.retry_backoff, opts.retry_backoff_max)
        state = await self._redis_retry(self.broker.fail(job, error, tb, delay_ms, retry=retry))
        self._settled(r)
        ms = (time.monotonic() - r.started) * 1000
        if state == "lost":
            log.warning("job %s failed after its lease was lost; outcome discarded", job.id)
            return
        kind = {"scheduled": "retrying", "dead": "dead"}.get(state or "", "failed")
        logs.lifecycle(log, event or kind, task_id=job.id, task_name=job.task, queue=job.queue,
                       attempt=job.attempts, worker=self.name, duration_ms=ms, exc=exc,
                       error=error)  # fmt: skip

    # -- leases --------------------------------------------------------------------------------
    async def _lease_timer(self) -> None:
        interval = self.broker.lease_ms / 3000
        next_recover = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            await self.extend_leases()
            if time.monotonic() >= next_recover:
                await self._redis(self.broker.recover(self.queues))
                next_recover = time.monotonic() + interval * random.uniform(1.0, 2.0)

    async def extend_leases(self) -> None:
        held = self.inflight()
        if not held:
            return
        res = await self._redis(self.broker.extend(held))
        if res is not None:
            self.on_lease_news(*res)

    def on_lease_news(self, lost: Sequence[str], cancelled: Sequence[str]) -> None:
        """Stop jobs whose lease moved on, and jobs whose cancellation was requested."""
        for job_id in lost:
            r = self.running.get(job_id)
            if r is not None and r.task is not None and not r.task.done():
                r.lost = True
                log.warning("lease of job %s was lost; stopping it", job_id)
                r.task.cancel()
        for job_id in cancelled:
            r = self.running.get(job_id)
            if r is not None and r.task is not None and not r.task.done():
                r.cancel_requested = True
                r.task.cancel()

    # -- shutdown ------------------------------------------------------------------------------
    async def _shutdown(self) -> None:
        tasks = [r.task for r in self.running.values() if r.task is not None and not r.task.done()]
        if tasks:
            log.info("waiting up to %gs for %d running job(s)", self.grace_period, len(tasks))
            await asyncio.wait(tasks, timeout=self.grace_period)
        leftover = [r for r in self.running.values() if r.task is not None and not r.task.done()]
        if leftover:
            held = [(r.job.id, r.job.queue, r.job.token) for r in leftover]
            n = await self._redis_retry(self.broker.release(held), attempts=5)
            log.warning("released %s unfinished job(s) back to their queues", n)
            for r in leftover:
                r.task.cancel()  # type: ignore[union-attr]
            await asyncio.gather(*(r.task for r in leftover), return_exceptions=True)
        while self._ack_task is not None or self._acks:
            if self._ack_task is None:
                self._ack_task = asyncio.ensure_future(self._flush_acks())
            await self._ack_task

    # -- Redis errors --------------------------------------------------------------------------
    async def _redis(self, call: Any) -> Any:
        """Run a call; on a connection error log the outage once, back off, return None."""
        try:
            res = await self.call(call)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.BusyLoadingError, redis.exceptions.ReadOnlyError) as exc:  # fmt: skip
            await self._outage(exc)
            return None
        self._reconnected()
        return res

    async def _redis_retry(self, call: Any, attempts: int | None = None) -> Any:
        """Run a call that must land (ack, fail, release), retrying through outages."""
        n = 0
        while True:
            res = await self._redis(call)
            if res is not None:
                return res
            n += 1
            if attempts is not None and n >= attempts:
                return None
            if self.stopping and n >= 50:
                log.error("giving up on %s after %d tries; the lease will expire and the job "
                          "will be recovered", call.script, n)  # fmt: skip
                return None

    async def _outage(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
            self._backoff = RECONNECT[0]
            log.error("lost Redis (%s); reconnecting with backoff", redact_text(str(exc)))
        await asyncio.sleep(self._backoff * random.uniform(0.5, 1.0))
        self._backoff = min(self._backoff * 2, RECONNECT[1])

    def _reconnected(self) -> None:
        if self._outage_since is not None:
            log.warning("Redis is back after %.1fs", time.monotonic() - self._outage_since)
            self._outage_since = None


_thread_lock = threading.Lock()


def _in_thread(r: Running, call: Any) -> Any:
    """Run a time-limited sync call, noting its thread so the limit can interrupt it."""
    with _thread_lock:
        r.thread = threading.get_ident()
    try:
        return call()
    finally:
        with _thread_lock:
            r.thread = None


def _interrupt_thread(r: Running) -> None:
    """Soft time limit: raise SoftTimeLimitExceeded inside the thread still running ``r``
    (delivered at its next Python bytecode; code blocked in C sees it when the call returns)."""
    with _thread_lock:
        if r.thread is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(r.thread), ctypes.py_object(SoftTimeLimitExceeded)
            )


class _AttemptTimeout(Exception):
    """An attempt ran past its time limit (internal; recorded as a TimeoutError failure)."""
