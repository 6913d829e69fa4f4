"""Sync processors: threads that run sync tasks and acknowledge them without a hop through the
event loop for each job.

Duties:
1. Start threads on demand, one when a sync job finds no idle thread, up to one per slot (an
   async-only worker starts none); a thread idle for ``IDLE_EXIT`` seconds exits, and the last
   one to go gives the freed memory back to the OS (``memory.trim``): an idle worker keeps no
   thread stacks, thread-state chunks or malloc arenas of its busy spell.
2. Each thread takes a job from its inbox (filled by the fetcher), runs the task's code in that
   thread with its job context set, and queues the result. A thread may take the fetcher's idle
   wait instead (``thread_wait.py``) and run a sync job that wait leased; ``handoff`` lets a
   thread take a queued job before the loop goes on.
3. Acknowledge results in batches on a sync connection from the process's bounded pool: the
   thread that finds no ack in flight sends one ack call for every result queued at that moment
   (the others only queue theirs), then hands the batch back to the loop in one call (settle,
   free the slots, log): one loop wake-up per batch instead of one per job.
4. Hand failures, cancels and lost leases to the loop, where the executor records them like
   any other job's.
5. ``interrupt(r)``: stop a task whose cancel was asked or whose lease was lost, by raising an
   exception inside its thread (delivered at its next Python bytecode).
Jobs with a time limit, async tasks and unknown tasks never come here (``Executor.fast_path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import logs
from ..connection import connect
from ..context import JobContext, set_current
from ..memory import trim
from ..runner import SyncRunner
from .executor import CANCELLED, decode_args, encode_outcome
from .running import Running
from .thread_wait import ThreadWait

if TYPE_CHECKING:
    from .core import Worker

log = logging.getLogger("taskqueue.worker")
#: A thread's result retried this many times through an outage once the worker is stopping.
STOP_TRIES = 50
#: Seconds a processor thread waits for a job before it exits; the next sync job after that
#: starts one again (0.1-0.3 ms, paid by the first job after an idle spell). Each thread costs
#: ~180 KiB of private memory per process (stack pages, frame chunk, malloc arena):
#: bench/idle_memory.py.
IDLE_EXIT = 0.5
#: Longest the loop waits in ``handoff`` for a thread to take a job (s).
HANDOFF_WAIT = 0.002


class _Stop(BaseException):
    """Raised inside a processor thread to stop its task (cancel asked, or lease lost)."""


class Processors:
    """Up to ``threads`` threads running sync jobs for ``worker``."""

    def __init__(self, worker: Worker, threads: int) -> None:
        self.w = worker
        self.size = threads
        self.inbox: queue.SimpleQueue[Running | ThreadWait | None] = queue.SimpleQueue()
        self._threads: set[threading.Thread] = set()
        self._idle = 0  # threads waiting for a job that have not taken one yet
        self._pool = threading.Lock()  # _threads, _idle, and each put into the inbox
        self._named = 0
        self._closing = False
        self._done: list[tuple[Running, bytes]] = []
        self._lock = threading.Lock()
        self._guard = threading.Lock()  # r.thread and interrupts
        self._flushing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._run: SyncRunner | None = None
        self._handoff: threading.Event | None = None
        self._waiting = 0  # threads in an idle wait (ThreadWait)

    def submit(self, r: Running | ThreadWait) -> None:
        """Queue ``r`` for the next free thread (called on the loop)."""
        if self._run is None:
            self._loop = asyncio.get_running_loop()
            self._run = SyncRunner(connect(self.w.settings, name="worker"))
        with self._pool:
            self.inbox.put(r)
            self._grow()

    def wait_then_fetch(self, keys: list[str], timeout: float, fetch: Any) -> ThreadWait:
        """The fetcher's idle wait, run by a thread (``thread_wait.py``; called on the loop)."""
        wait = ThreadWait(keys, timeout, fetch)
        self.submit(wait)
        return wait

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    @property
    def runner(self) -> SyncRunner:
        assert self._run is not None
        return self._run

    def handoff(self) -> None:
        """Let a thread start the jobs just queued before the loop goes on (called on the loop
        after an idle wait brought jobs). The loop holds the GIL until it next blocks: sending
        the next idle wait took 0.2 ms, and a woken thread waited that long for the GIL before
        it could start its job. Here the loop blocks (GIL released) until every queued job is
        taken, at most ``HANDOFF_WAIT``; only when an idle or new thread will take one."""
        with self._pool:
            if not self.inbox.qsize() or not self._idle:
                return
            done = self._handoff = threading.Event()
        done.wait(HANDOFF_WAIT)
        self._handoff = None

    def interrupt(self, r: Running) -> None:
        """Stop ``r``'s task if its code is running now (called on the loop)."""
        with self._guard:
            tid, r.thread = r.thread, None
            if tid is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid),
                                                           ctypes.py_object(_Stop))  # fmt: skip

    def close(self) -> None:
        """Let the threads exit once idle, and close the connection (called on the loop)."""
        with self._pool:
            self._closing = True
            threads = list(self._threads)
            for _ in threads:
                self.inbox.put(None)
        for t in threads:
            t.join(timeout=1.0)
        if self._run is not None and not any(t.is_alive() for t in threads):
            client = self._run.client
            client.close()
            pool = getattr(client, "connection_pool", None)  # a cluster client has none
            if pool is not None:  # close() leaves a pool it was given open
                pool.disconnect()

    # -- the threads ---------------------------------------------------------------------------
    def _grow(self) -> None:
        """With ``_pool`` held: one thread more if a queued job has no idle thread to take it."""
        if self._closing:  # the inbox holds one None per thread: no more threads
            return
        if self.inbox.qsize() > self._idle and len(self._threads) < self.size:
            t = threading.Thread(target=self._serve, name=f"tq-sync-{self._named}", daemon=True)
            self._named += 1
            self._threads.add(t)
            self._idle += 1  # counted until it takes its first job, like any waiting thread
            t.start()

    def _serve(self) -> None:
        me = threading.current_thread()
        idle = True  # counted in _idle
        try:
            while True:
                try:
                    r = self.inbox.get(timeout=IDLE_EXIT)
                except queue.Empty:
                    with self._pool:
                        if not self.inbox.qsize():
                            return  # (a job queued from now on starts a thread: see finally)
                    continue  # a job came meanwhile: take it
                with self._pool:
                    self._idle -= 1
                    idle = False
                    done = self._handoff
                    if done is not None and not self.inbox.qsize():
                        done.set()
                    if r is None:
                        return
                    # A job queued while this thread was taking its own, counting it as idle,
                    # found no thread to start: start it now.
                    self._grow()
                if isinstance(r, ThreadWait):
                    with self._pool:
                        self._waiting += 1
                    try:
                        r.run(self)
                    finally:
                        with self._pool:
                            self._waiting -= 1
                else:
                    self.process(r)
                with self._pool:
                    self._idle += 1
                    idle = True
        finally:
            with self._pool:  # however the thread ends, a queued job keeps a thread
                self._idle -= idle
                self._threads.discard(me)
                last = len(self._threads) <= self._waiting  # the rest wait for work in Redis
                self._grow()
            if last:
                trim()

    def process(self, r: Running) -> None:
        """Run ``r``'s code in this thread, then queue its ack or hand its failure to the loop."""
        w, job = self.w, r.job
        func = w.registry.get(job.task).func  # type: ignore[union-attr]
        set_current(JobContext(job.id, job.task, job.queue, job.attempts, w.name, job.token))
        logs.lifecycle(log, "started", task_id=job.id, task_name=job.task, queue=job.queue,
                       attempt=job.attempts, worker=w.name)  # fmt: skip
        try:
            try:
                args, kwargs = decode_args(job)
                with self._guard:
                    r.thread = threading.get_ident()
                try:
                    result = func(*args, **kwargs)
                finally:
                    with self._guard:
                        r.thread = None
                    r.code = False  # finished: a crash from here on is no fault of this job
                payload = encode_outcome(result)
            except _Stop:
                raise
            except Exception as exc:
                self._to_loop(self._failed, r, exc)
                return
            if r.cancel_requested or r.lost:
                raise _Stop
        except _Stop:  # also when it arrives a few bytecodes after the task's code returned
            self._to_loop(self._stopped, r)
            return
        self._ack(r, payload)

    def _failed(self, r: Running, exc: BaseException) -> None:
        asyncio.ensure_future(self.w.executor.failed(r, exc))

    def _stopped(self, r: Running) -> None:
        if r.cancel_requested:
            self._failed(r, CANCELLED)
        else:
            self.w.forget(r)

    def _ack(self, r: Running, payload: bytes) -> None:
        with self._lock:
            self._done.append((r, payload))
            if self._flushing:
                return  # the thread flushing now takes it with its next batch
            self._flushing = True
        while True:
            with self._lock:
                batch, self._done = self._done, []
                if not batch:
                    self._flushing = False
                    return
            ok = self._call(self.w.broker.ack([(r.job, p) for r, p in batch]))
            self._to_loop(self.w.acker.landed, [r for r, _ in batch], ok)

    def _call(self, call: Any) -> Any:
        """Run a call that must land, riding out an outage with the link's back-off (the
        worker's one outage state: logged once per change)."""
        assert self._run is not None
        state, tries = self.w.link.state, 0
        while True:
            try:
                res = self._run(call)
            except Exception as exc:  # noqa: BLE001 - classified and logged by Outage
                tries += 1
                if self.w.stopping and tries >= STOP_TRIES:
                    log.error("giving up on %s after %d tries; the lease will expire and the "
                              "job will be recovered", call.script, tries)  # fmt: skip
                    return None
                time.sleep(state.failed(exc, f"script {call.script}"))
                continue
            if state.down:
                state.ok()
            return res

    def _to_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(fn, *args)
