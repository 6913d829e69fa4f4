"""The executor: run one leased job's code and hand its outcome to the acker.

Duties:
1. Find the task, decode the payload; an unknown task or a bad payload is rejected (dead
   letter, no retry), and the worker keeps going.
2. Run async tasks as coroutines on the loop; sync tasks with a time limit in a thread pool
   of one thread per slot (``fast_path`` ones go to ``processors.py`` instead).
3. Stop an attempt at its time limit: cancel the coroutine, or raise SoftTimeLimitExceeded
   inside the sync task's thread; ``overdue()`` tells how far the worst sync call has run past
   its limit (the master kills the process for code that ignores the soft limit).
4. Turn the outcome into an ack, a retry, a rejection, a cancellation or a failure.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import functools
import logging
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .. import logs, registered
from ..broker import Leased
from ..context import JobContext, set_current
from ..errors import Reject, Retry, SerializationError, SoftTimeLimitExceeded
from ..redact import redact_text
from ..registry import TaskOptions
from ..serialization import MalformedPayload, decode_call, encode_result
from .running import Running

if TYPE_CHECKING:
    from .core import Worker

log = logging.getLogger("taskqueue.worker")
_DEFAULT_OPTIONS = TaskOptions()


class Executor:
    """Runs jobs for ``worker``; sync code in ``threads`` threads."""

    def __init__(self, worker: Worker, threads: int) -> None:
        self.w = worker
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="tq-task")
        #: Time-limited sync calls running now: id(Running) -> (Running, monotonic start).
        self._timed: dict[int, tuple[Running, float]] = {}
        self._lock = threading.Lock()

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def overdue(self) -> float:
        """Seconds the worst sync call has run past its job's time limit (0 if none)."""
        worst = 0.0
        now = time.monotonic()
        with self._lock:
            calls = list(self._timed.values())
        for r, started in calls:
            worst = max(worst, now - started - r.job.timeout_ms / 1000)
        return worst

    async def _unknown(self, job: Any) -> Exception:
        """The error for a job whose task this worker does not know: ``Retry`` (with backoff,
        counted against its retries) while some live worker consuming its queue registers the
        task (a deploy rolling out), else ``Reject`` (the dead letter at once)."""
        w = self.w
        mine = ", ".join(w.registry.names()) or "none"
        try:
            raw = await w.link.redis.hgetall(w.keys.registered)
        except Exception as exc:  # noqa: BLE001 - cannot tell now: ask again later
            return Retry(reason=f"task {job.task!r} is unknown here and the registered tasks "
                                f"could not be read ({type(exc).__name__})")  # fmt: skip
        live, _ = registered.live_entries(raw)
        others = registered.serves(live, job.task, job.queue)
        if others:
            return Retry(reason=f"task {job.task!r} is not registered in this worker, but "
                                f"{', '.join(others[:3])} registers it (a deploy rolling out?)")  # fmt: skip
        return Reject(f"unknown task {job.task!r}: no task of that name is registered in this "
                      f"worker (imported: {mine}) nor in any live worker consuming queue "
                      f"{job.queue!r}")  # fmt: skip

    def fast_path(self, job: Leased) -> bool:
        """True when ``job`` may run on a sync processor thread: a registered sync task without
        a time limit, not a suspect (everything else runs here, where limits, rejections and
        poison isolation are handled)."""
        spec = self.w.registry.get(job.task)
        return spec is not None and not spec.is_async and not job.timeout_ms and not job.stalls

    async def execute(self, r: Running) -> None:
        w = self.w
        job = r.job
        spec = w.registry.get(job.task)
        set_current(JobContext(job.id, job.task, job.queue, job.attempts, w.name, job.token))
        logs.lifecycle(log, "started", task_id=job.id, task_name=job.task, queue=job.queue,
                       attempt=job.attempts, worker=w.name)  # fmt: skip
        try:
            if job.stalls:
                await w.alone(r)
            r.code = True
            w.hooks.code_started(r)
            if spec is None:
                raise await self._unknown(job)
            args, kwargs = decode_args(job)
            if spec.is_async:
                work = spec.func(*args, **kwargs)
            else:
                call = functools.partial(contextvars.copy_context().run, spec.func, *args,
                                         **kwargs)  # fmt: skip
                if job.timeout_ms:
                    call = functools.partial(self._timed_call, r, call)
                work = asyncio.get_running_loop().run_in_executor(self.pool, call)
            if job.timeout_ms:
                result = await self._with_timeout(work, job.timeout_ms / 1000, r)
            else:
                result = await work
            payload = encode_outcome(result)
        except asyncio.CancelledError:
            if r.cancel_requested:
                await self.failed(r, CANCELLED)
            elif r.lost:
                w.forget(r)
            else:
                raise  # shutdown: the job is released by Worker.shutdown
        except Exception as exc:
            await self.failed(r, exc)
        else:
            w.slot_freed(r)
            w.acker.ack(r, payload)

    async def failed(self, r: Running, exc: BaseException) -> None:
        """Record the failure ``exc`` of ``r``'s attempt, by kind: timeout, ``Retry`` (its
        delay), ``Reject`` or a cancel (no retry), anything else (retry with backoff)."""
        spec = self.w.registry.get(r.job.task)
        opts = spec.options if spec else _DEFAULT_OPTIONS
        fail = self.w.acker.fail
        if exc is CANCELLED:
            await fail(r, opts, "Cancelled: cancel requested", "", retry=False)
        elif isinstance(exc, _AttemptTimeout):
            await fail(r, opts, f"TimeoutError: {exc}", "", event="timeout")
        elif isinstance(exc, Retry):
            delay = None if exc.delay is None else int(exc.delay * 1000)
            await fail(r, opts, f"Retry: {exc.reason}", "", delay_ms=delay)
        elif isinstance(exc, Reject):
            await fail(r, opts, f"Reject: {exc}", "", retry=False, exc=exc)
        else:
            err = redact_text(f"{type(exc).__name__}: {exc}")
            tb = redact_text("".join(traceback.format_exception(exc)))
            await fail(r, opts, err, tb, exc=exc)

    async def _with_timeout(self, work: Any, seconds: float, r: Running) -> Any:
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=seconds)
        if task not in done:
            task.cancel()
            self._interrupt(r)
            raise _AttemptTimeout(f"task exceeded its time limit of {seconds:g}s")
        return task.result()

    def _timed_call(self, r: Running, call: Any) -> Any:
        """Run a time-limited sync call (in a pool thread), noting its thread so that the limit
        can interrupt it and ``overdue()`` can see it until it returns."""
        with self._lock:
            r.thread = threading.get_ident()
            self._timed[id(r)] = (r, time.monotonic())
        try:
            return call()
        finally:
            with self._lock:
                r.thread = None
                self._timed.pop(id(r), None)

    def _interrupt(self, r: Running) -> None:
        """Soft time limit: raise SoftTimeLimitExceeded inside the thread still running ``r``
        (delivered at its next Python bytecode; code blocked in C sees it when the call returns)."""
        with self._lock:
            if r.thread is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(r.thread), ctypes.py_object(SoftTimeLimitExceeded)
                )


def decode_args(job: Leased) -> tuple[list, dict]:
    """The job's (args, kwargs); a payload that does not decode is a ``Reject``."""
    try:
        return decode_call(job.payload)
    except MalformedPayload as exc:
        raise Reject(f"malformed payload for task {job.task!r}: {exc}") from None


def encode_outcome(result: Any) -> bytes:
    """The stored form of a task's return value; one that cannot be stored is a ``Reject``."""
    try:
        return encode_result(result)
    except SerializationError as exc:
        # Running it again would return the same: dead-letter it now, with the reason.
        raise Reject(f"result cannot be stored: {exc}") from None


class _AttemptTimeout(Exception):
    """An attempt ran past its time limit (internal; recorded as a TimeoutError failure)."""


#: Marks a failure as "cancel requested" (recorded as cancelled, no retry).
CANCELLED = Exception("cancel requested")
