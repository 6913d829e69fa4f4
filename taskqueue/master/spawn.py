"""Forking worker processes, and the back-off that keeps a broken worker from fork-bombing.

Duties:
1. ``WorkerSpec``: what a worker process needs, taken from the configuration at fork time.
2. ``fork_worker``: ready the master's memory to be shared (``share.prepare_to_share``), fork
   with the master's signals blocked (so no signal reaches the child while it still has the
   master's handlers), give the child its ends of two pipes and close
   the master's fds in it, run ``child.run_child`` and ``os._exit`` with its code.
3. ``BootGuard``: exponential back-off after workers die before they report "up"; after
   ``MAX_BOOT_FAILURES`` in a row it halts spawning until a reload (HUP) resets it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..client import TaskQueue
from ..connection import RedisSettings
from .channel import Channel
from .share import prepare_to_share

log = logging.getLogger("taskqueue.master")
MAX_BOOT_FAILURES = 5
BACKOFF = (0.5, 30.0)
#: Hook a task module may define: called once in each worker process right after the fork.
BOOT_HOOK = "worker_boot"


@dataclass
class WorkerSpec:
    redis: RedisSettings
    namespace: str
    key_prefix: str
    prefix: str
    queues: list[str]
    concurrency: int
    grace: float
    beat: float
    lease_ms: int
    max_stalls: int
    imports: list[str] = field(default_factory=list)
    burst: bool = False
    host: str = field(default_factory=socket.gethostname)

    @classmethod
    def from_config(cls, cfg: Any, burst: bool = False) -> WorkerSpec:
        w = cfg.workers
        return cls(
            redis=RedisSettings.from_config(cfg),
            namespace=cfg.redis.namespace,
            key_prefix=cfg.redis.key_prefix,
            prefix=w.worker_prefix,
            queues=list(w.queues),
            concurrency=w.max_concurrent_tasks,
            grace=w.shutdown_grace_period,
            beat=w.heartbeat_interval,
            lease_ms=int(w.lease_seconds * 1000),
            max_stalls=w.max_stalls,
            imports=list(w.imports),
            burst=burst,
        )

    def taskqueue(self) -> TaskQueue:
        opts = {"lease_ms": self.lease_ms, "max_stalls": self.max_stalls}
        return TaskQueue(self.redis, namespace=self.namespace, prefix=self.key_prefix,
                         broker_options=opts)  # fmt: skip

    def run_boot_hooks(self) -> None:
        for name in self.imports:
            hook = getattr(sys.modules.get(name.split(":")[0]), BOOT_HOOK, None)
            if callable(hook):
                hook()


def fork_worker(
    spec: WorkerSpec, index: int, quiet: bool, close_fds: Iterable[int]
) -> tuple[int, Channel]:
    """Fork one worker; return its pid and the master's end of its channel."""
    from .child import run_child

    to_child_r, to_child_w = os.pipe()
    to_master_r, to_master_w = os.pipe()
    master_pid = os.getpid()
    handled = signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    prepare_to_share()
    try:
        pid = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        for fd in (to_child_r, to_child_w, to_master_r, to_master_w):
            os.close(fd)
        raise
    if pid == 0:  # the child
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for sig in handled:
                with contextlib.suppress(OSError, ValueError):
                    signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            for fd in (*close_fds, to_child_w, to_master_r):
                with contextlib.suppress(OSError):
                    os.close(fd)
            code = run_child(spec, index, Channel(to_child_r, to_master_w), master_pid, quiet)
        except BaseException:
            log.exception("worker %d crashed", index)
        finally:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    os.close(to_child_r)
    os.close(to_master_w)
    return pid, Channel(to_master_r, to_child_w)


class BootGuard:
    """Counts workers that die before booting; says when the next spawn may happen."""

    def __init__(self, limit: int = MAX_BOOT_FAILURES) -> None:
        self.limit = limit
        self.failures = 0
        self.next_at = 0.0
        self.halted = False

    def may_spawn(self, now: float) -> bool:
        return not self.halted and now >= self.next_at

    def failed(self, now: float) -> None:
        self.failures += 1
        if self.failures >= self.limit:
            self.halted = True
            return
        self.next_at = now + min(BACKOFF[0] * 2 ** (self.failures - 1), BACKOFF[1])

    def booted(self) -> None:
        self.failures = 0
        self.next_at = 0.0

    def reset(self) -> None:
        self.booted()
        self.halted = False
