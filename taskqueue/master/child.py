"""What runs in a forked worker process.

Duties:
1. Detach from the master's signal set-up: own process group (a hard kill takes grandchildren
   too), default handlers, no inherited wakeup fd; TERM = graceful stop, QUIT = fast stop
   (release held jobs now), INT ignored (the master decides), USR1 reopens log files, USR2
   dumps every thread's stack (faulthandler, async-signal-safe).
2. Exit promptly when the master dies: PR_SET_PDEATHSIG (Linux, via prctl) delivers QUIT, and
   the heartbeat also checks the parent pid (any OS).
3. Title the process ``task-worker: worker N busy b/s`` (setproctitle).
4. Run the modules' ``worker_boot()`` hooks, then a ``Worker(standalone=False)``; a failure
   before the worker runs exits with ``BOOT_FAILED`` so the master can back off.
5. Report held jobs, processed count, busy slots and overdue sync calls to the master every
   heartbeat and whenever the held jobs change; apply the master's lost/cancel/quiet messages.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import ctypes.util
import faulthandler
import logging
import os
import signal
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..worker import Running, Worker
from .channel import Channel

log = logging.getLogger("taskqueue.master.child")
BOOT_FAILED = 3
#: Coalescing delay of change reports (s): a batch of starts or acks makes one message.
REPORT_DELAY = 0.02
PR_SET_PDEATHSIG = 1
_current: contextvars.ContextVar[Running | None] = contextvars.ContextVar("tq_job", default=None)

try:
    from setproctitle import setproctitle
except ImportError:  # pragma: no cover

    def setproctitle(title: str) -> None:
        pass


class TrackingExecutor(ThreadPoolExecutor):
    """A thread pool that remembers which job each running sync call belongs to."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: dict[Future, tuple[Running | None, float]] = {}

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        fut = super().submit(fn, *args, **kwargs)
        self.calls[fut] = (_current.get(), time.monotonic())
        fut.add_done_callback(lambda f: self.calls.pop(f, None))
        return fut

    def overdue(self) -> float:
        """Seconds the worst sync call has run past its job's time limit (0 if none)."""
        worst = 0.0
        now = time.monotonic()
        for r, started in list(self.calls.values()):
            if r is not None and r.job.timeout_ms:
                worst = max(worst, now - started - r.job.timeout_ms / 1000)
        return worst


def worker_name(spec: Any, pid: int) -> str:
    """The worker id of child ``pid``: its lease tokens and its held set in Redis use it."""
    return f"{spec.prefix}-{spec.host}-{pid}"


class ChildWorker(Worker):
    """A ``Worker`` that talks to its master through a ``Channel``."""

    def __init__(self, *args: Any, channel: Channel, index: int, beat: float, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._executor.shutdown(wait=False)
        self._executor = TrackingExecutor(self.max_concurrent, thread_name_prefix="tq-task")
        self.channel = channel
        self.index = index
        self.beat = beat
        self.master_pid = os.getppid()
        self._report_handle: asyncio.TimerHandle | None = None
        self._title = ""

    # -- hooks into Worker ---------------------------------------------------------------------
    def _start(self, job: Any) -> None:
        super()._start(job)
        self._changed()

    def _settled(self, r: Running) -> None:
        super()._settled(r)
        self._changed()

    async def _execute(self, r: Running) -> None:
        _current.set(r)  # this task's own context: TrackingExecutor sees which job submits
        await super()._execute(r)

    # -- lifecycle -----------------------------------------------------------------------------
    async def run_async(self, burst: bool = False) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop)
        loop.add_signal_handler(signal.SIGQUIT, self.quit)
        loop.add_signal_handler(signal.SIGUSR1, reopen_logs)
        loop.add_reader(self.channel.rfd, self._on_master)
        beat = asyncio.ensure_future(self._heartbeat())
        self.channel.send({"t": "up"})
        try:
            await super().run_async(burst)
        finally:
            beat.cancel()
            loop.remove_reader(self.channel.rfd)
            self._report()
            self.channel.flush()

    def quit(self) -> None:
        """Fast stop: give held jobs back at once (no grace), then exit."""
        self.grace_period = 0.0
        self.stop()

    async def _heartbeat(self) -> None:
        while True:
            if os.getppid() != self.master_pid:
                log.warning("master %d is gone; stopping now", self.master_pid)
                self.quit()
                return
            self._report()
            await asyncio.sleep(self.beat)

    # -- the channel ---------------------------------------------------------------------------
    def _changed(self) -> None:
        if self._report_handle is None and self._loop is not None:
            self._report_handle = self._loop.call_later(REPORT_DELAY, self._report)

    def _report(self) -> None:
        if self._report_handle is not None:
            self._report_handle.cancel()
            self._report_handle = None
        now_m, now_w = time.monotonic(), time.time()
        jobs = [
            [r.job.id, r.job.queue, r.job.token, r.job.task, now_w - (now_m - r.started),
             r.job.timeout_ms]
            for r in self.running.values()
        ]  # fmt: skip
        self.channel.send(
            {"t": "st", "jobs": jobs, "p": self.processed, "b": self.busy,
             "o": self._executor.overdue()}  # type: ignore[attr-defined]
        )  # fmt: skip
        title = f"task-worker: worker {self.index} busy {self.busy}/{self.max_concurrent}"
        if title != self._title:
            setproctitle(title)
            self._title = title

    def _on_master(self) -> None:
        msgs = self.channel.read()
        if msgs is None:  # the master closed its end: it is gone
            assert self._loop is not None
            self._loop.remove_reader(self.channel.rfd)
            self.quit()
            return
        for msg in msgs:
            kind = msg.get("t")
            if kind == "lost":
                self.on_lease_news(msg["ids"], [])
            elif kind == "cancel":
                self.on_lease_news([], msg["ids"])
            elif kind == "quiet":
                self.quiet = bool(msg["on"])
                if self._wakeup is not None:
                    self._wakeup.set()
        self.channel.flush()


def reopen_logs() -> None:
    """Reopen every file handler of the root logger (after logrotate moved the files)."""
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.FileHandler):
            h.acquire()
            try:
                if h.stream:
                    h.stream.close()
                h.stream = h._open()
            finally:
                h.release()


def set_pdeathsig(sig: int) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def run_child(spec: Any, index: int, channel: Channel, master_pid: int, quiet: bool) -> int:
    """Body of a forked worker; returns its exit code (the caller ``os._exit``s with it)."""
    os.setpgid(0, 0)
    set_pdeathsig(signal.SIGQUIT)
    if os.getppid() != master_pid:  # the master died before prctl took effect
        return 0
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.register(signal.SIGUSR2, all_threads=True)
    setproctitle(f"task-worker: worker {index} booting")
    try:
        spec.run_boot_hooks()
        worker = ChildWorker(
            spec.taskqueue(),
            spec.queues,
            spec.concurrency,
            name=worker_name(spec, os.getpid()),
            grace_period=spec.grace,
            standalone=False,
            channel=channel,
            index=index,
            beat=spec.beat,
        )
        worker.quiet = quiet
    except Exception:
        log.exception("worker %d (pid %d) failed to boot", index, os.getpid())
        return BOOT_FAILED
    worker.run(spec.burst)
    return 0
