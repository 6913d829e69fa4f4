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
import ctypes
import ctypes.util
import faulthandler
import logging
import os
import signal
import sys
import time
from typing import Any

from ..supervise import supervised
from ..worker import Running, Worker, WorkerHooks
from .channel import Channel

log = logging.getLogger("taskqueue.master.child")
BOOT_FAILED = 3
#: Coalescing delay of change reports (s): a batch of starts or acks makes one message.
REPORT_DELAY = 0.02
PR_SET_PDEATHSIG = 1

try:
    from setproctitle import setproctitle
except ImportError:  # pragma: no cover

    def setproctitle(title: str) -> None:
        pass


def worker_name(spec: Any, pid: int) -> str:
    """The worker id of child ``pid``: its lease tokens and its held set in Redis use it."""
    return f"{spec.prefix}-{spec.host}-{pid}"


class ChildWorker(WorkerHooks):
    """Runs a ``Worker`` in a forked child and talks to the master through a ``Channel``."""

    def __init__(self, worker: Worker, *, channel: Channel, index: int, beat: float) -> None:
        self.worker = worker
        worker.hooks = self
        self.channel = channel
        self.index = index
        self.beat = beat
        self.master_pid = os.getppid()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._report_handle: asyncio.TimerHandle | None = None
        self._title = ""

    # -- hooks ---------------------------------------------------------------------------------
    def job_started(self, r: Running) -> None:
        self._changed()

    def job_settled(self, r: Running) -> None:
        self._changed()

    # -- lifecycle -----------------------------------------------------------------------------
    def run(self, burst: bool = False) -> None:
        asyncio.run(self.run_async(burst))

    async def run_async(self, burst: bool = False) -> None:
        loop = self._loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.worker.stop)
        loop.add_signal_handler(signal.SIGQUIT, self.quit)
        loop.add_signal_handler(signal.SIGUSR1, reopen_logs)
        loop.add_reader(self.channel.rfd, self._on_master)
        beat = asyncio.ensure_future(supervised("heartbeat", self._heartbeat))
        self.channel.send({"t": "up"})
        try:
            await self.worker.run_async(burst)
        finally:
            beat.cancel()
            loop.remove_reader(self.channel.rfd)
            self._report()
            self.channel.flush()

    def quit(self) -> None:
        """Fast stop: give held jobs back at once (no grace), then exit."""
        self.worker.stop(grace_period=0.0)

    async def _heartbeat(self) -> None:
        while True:
            if os.getppid() != self.master_pid:
                log.warning("master %d is gone; stopping now", self.master_pid)
                self.quit()
                return
            self._report()
            await asyncio.sleep(self.beat)

    # -- the channel ---------------------------------------------------------------------------
    def code_started(self, r: Running) -> None:
        # A suspect may kill this process at once: the master must know it started first.
        if r.job.stalls:
            self._report()
            self.channel.flush()
        else:
            self._changed()

    def _changed(self) -> None:
        if self._report_handle is None and self._loop is not None:
            self._report_handle = self._loop.call_later(REPORT_DELAY, self._report)

    def _report(self) -> None:
        if self._report_handle is not None:
            self._report_handle.cancel()
            self._report_handle = None
        w = self.worker
        now_m, now_w = time.monotonic(), time.time()
        jobs = [
            [r.job.id, r.job.queue, r.job.token, r.job.task, now_w - (now_m - r.started),
             r.job.timeout_ms, int(r.code)]
            for r in w.running.values()
        ]  # fmt: skip
        self.channel.send(
            {"t": "st", "jobs": jobs, "p": w.processed, "b": w.busy, "o": w.executor.overdue()}
        )
        title = f"task-worker: worker {self.index} busy {w.busy}/{w.max_concurrent}"
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
            log.debug("from the master: %s %s", kind, msg.get("ids", msg.get("on", "")))
            if kind == "lost":
                self.worker.on_lease_news(msg["ids"], [])
            elif kind == "cancel":
                self.worker.on_lease_news([], msg["ids"])
            elif kind == "quiet":
                self.worker.set_quiet(bool(msg["on"]))
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
        worker = Worker(
            spec.taskqueue(),
            spec.queues,
            spec.concurrency,
            name=worker_name(spec, os.getpid()),
            grace_period=spec.grace,
            standalone=False,
        )
        worker.quiet = quiet
        child = ChildWorker(worker, channel=channel, index=index, beat=spec.beat)
    except Exception:
        log.exception("worker %d (pid %d) failed to boot", index, os.getpid())
        return BOOT_FAILED
    child.run(spec.burst)
    return 0
