"""The master's loop: one thread, signals through a wakeup pipe, children reconciled each pass.

Duties:
1. Signals (``signals.py``): handlers record nothing themselves; ``set_wakeup_fd`` writes each signal's
   number into a pipe the loop polls, and the loop dispatches them (table in DESIGN.md).
2. Each pass: read the workers' reports, reap with ``waitpid(-1, WNOHANG)`` (releasing a dead
   worker's jobs at once), run the timers (leases, recovery, promotion, status record, control
   commands, sd_notify), apply the recycling rules, then reconcile the wanted worker count
   with the actual one (like gunicorn's ``manage_workers``), honouring the boot back-off.
3. The operations signals and ``tqctl`` share: ``scale``, ``set_quiet``, ``drain``, ``reload``
   (rolling, in ``reload.py``), ``stop``, ``dump``, ``status``.
No threads: Redis calls, timers and control commands all run in this loop.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from .. import __version__, registered
from ..broker import Broker
from ..connection import RedisSettings
from ..keys import Keys
from ..redact import redact_url
from ..registry import registry
from . import signals
from .autoscale import Autoscale
from .child import setproctitle, worker_name
from .control import ControlPlane, Reply
from .handle import WorkerHandle
from .httpchild import HttpChild
from .inbox import Inbox
from .leases import LeaseKeeper
from .periodic import keeper_for
from .recycle import Recycler
from .redisguard import RedisGuard
from .reload import Reloader
from .sdnotify import Notifier
from .spawn import BootGuard, WorkerSpec, fork_worker

log = logging.getLogger("taskqueue.master")
#: Time between two status records in Redis (they expire after five). Independent of
#: workers.heartbeat_interval, which paces the workers' reports to their master over its pipes:
#: an idle master writes to Redis every 2 s whatever that setting is.
HEARTBEAT = 2.0
#: Commands arrive through the inbox at once; this slow poll only covers a broken inbox.
CONTROL_EVERY = 10.0
FAST_GRACE = 3.0


class Arbiter:
    def __init__(self, cfg: Any, load_config: Callable[[], Any], *, burst: bool = False) -> None:
        self.load_config = load_config
        self.burst = burst
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = f"{self.host}:{self.pid}"
        self.started = time.time()
        self.workers: dict[int, WorkerHandle] = {}
        self.generation = 1
        self.desired = cfg.workers.initial_count
        self.quiet = self.draining = self.stopping = self.fast = False
        self.ints = 0
        self.boot = BootGuard()
        self.notify = Notifier()
        self.reloader = Reloader(self)
        self.redis: RedisGuard | None = None
        self.autoscale = Autoscale(self.id)
        self.http = HttpChild(cfg) if cfg.web.enabled else None
        #: What the workers can run: the task modules were imported before the master started.
        self.apply_config(cfg)

    def apply_config(self, cfg: Any) -> None:
        self.cfg = cfg
        self.spec = WorkerSpec.from_config(cfg, self.burst)
        self.autoscale.configure(cfg)
        self.desired = self.autoscale.bound(self.desired)
        if self.http is not None:
            self.http.cfg = cfg  # used from its next spawn on
        self.keys = Keys(cfg.redis.key_prefix, cfg.redis.namespace)
        self.broker = Broker(
            self.keys, lease_ms=self.spec.lease_ms, max_stalls=self.spec.max_stalls
        )
        settings = RedisSettings.from_config(cfg)
        if self.redis is None or self.redis_settings != settings:
            self.redis_settings = settings
            old = getattr(self, "leases", None)
            if self.redis is not None:
                self.redis.close()
            self.redis = RedisGuard(settings)
            if old is not None and old.pending:
                log.warning("%d job release(s) pending on the old Redis", len(old.pending))
        # Workers promote due scheduled jobs themselves whenever they fetch (and wake up for the
        # next due one), so the master's own promotion timer is only the --enable-scheduler one.
        promote = cfg.scheduler.tick_interval if cfg.scheduler.enabled else None
        self.leases = LeaseKeeper(self.redis, self.broker, self.spec.queues, self.id, promote)
        self.periodic = keeper_for(cfg, self.redis, self.keys)
        self.beat = HEARTBEAT
        self.control = ControlPlane(self.redis, self.keys, self.id, self.beat)
        if getattr(self, "inbox", None) is not None:
            self._drop_inbox()
        self.inbox = Inbox(self.redis.client, self.keys.control(self.id))
        self.inbox_fd: int | None = None
        w = cfg.workers
        self.recycler = Recycler(max_tasks=w.max_tasks_per_child,
                                 max_memory_mib=w.max_memory_per_child,
                                 hung_timeout=w.hung_timeout, grace=w.shutdown_grace_period)  # fmt: skip
        setproctitle(f"task-worker: master [{w.worker_prefix}] queues={','.join(w.queues)}")

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> int:
        self._setup_signals()
        self._banner()
        self.ready_sent = False
        self.next_beat = self.next_control = 0.0
        self.beats = 0
        try:
            while True:
                try:
                    events = self.poller.poll(self._timeout() * 1000)
                except InterruptedError:
                    events = []
                self._read_signals()
                self._read_children(events)
                self._watch_inbox()
                self._reap()
                now = time.monotonic()
                self._timers(now)
                self.recycler.check(list(self.workers.values()), now, self._kill)
                self.reloader.progress(now)
                self._manage(now)
                if self.stopping and not self.workers and not (self.http and self.http.pid):
                    break
        finally:
            self._finish()
        return 0

    def _banner(self) -> None:
        """Where this master works (namespace, Redis without credentials) and what it runs."""
        described = registry.describe()
        tasks = ", ".join(f"{t['name']} [{t['queue']}]" for t in described) or "none"
        log.info(
            "master %s started: namespace %s (keys %s*) on %s, %d workers, queues=%s, generation %d; "
            "%d task(s): %s", self.id, self.keys.namespace, self.keys.base, redact_url(self.redis_settings.url),
            self.desired, ",".join(self.spec.queues), self.generation, len(described), tasks,
            extra={"namespace": self.keys.namespace, "redis": redact_url(self.redis_settings.url),
                   "tasks": {t["name"]: t["queue"] for t in described}},
        )  # fmt: skip
        if not described:
            log.warning("no task is registered: name your task modules with --import / "
                        "[workers] imports, or tasks with [workers] tasks")  # fmt: skip

    def _setup_signals(self) -> None:
        self.wake_r, self.wake_w = signals.install()
        self.poller = select.poll()
        self.poller.register(self.wake_r, select.POLLIN)
        self.fd_owner: dict[int, int] = {}

    def _timeout(self) -> float:
        now = time.monotonic()
        due = [self.next_beat, self.next_control, self.leases.next_due(), now + 1.0]
        due += [t for t in (self.autoscale.next_due(),) if t is not None]
        if self.http is not None and (t := self.http.next_due()) is not None:
            due.append(t)
        if self.periodic is not None:
            due.append(self.periodic.next_due())
        due += [w.kill_at for w in self.workers.values() if w.kill_at is not None]
        if self._missing() > 0 and not self.boot.halted:
            due.append(self.boot.next_at)
        return max(0.0, min(due) - now)

    def _read_signals(self) -> None:
        for signum in signals.pending(self.wake_r):
            signals.dispatch(self, signum)

    def _watch_inbox(self) -> None:
        fd = self.inbox.arm()
        if fd != self.inbox_fd:
            if self.inbox_fd is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.poller.unregister(self.inbox_fd)
            if fd is not None:
                self.poller.register(fd, select.POLLIN)
            self.inbox_fd = fd

    def _drop_inbox(self) -> None:
        if self.inbox_fd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.poller.unregister(self.inbox_fd)
            self.inbox_fd = None
        self.inbox.close()

    def _read_children(self, events: list[tuple[int, int]]) -> None:
        for fd, _ in events:
            if fd == self.inbox_fd and fd is not None:
                self.control.handle(self.inbox.read(), self)
                self.control.poll(self)  # anything else that queued up meanwhile
                continue
            pid = self.fd_owner.get(fd)
            w = self.workers.get(pid) if pid is not None else None
            if w is None:
                continue
            msgs = w.channel.read()
            if msgs is None:
                self.poller.unregister(fd)
                del self.fd_owner[fd]
                continue
            for msg in msgs:
                if w.on_message(msg):
                    self.boot.booted()
                    log.info("worker %d (pid %d, generation %d) is up", w.index, w.pid,
                             w.generation)  # fmt: skip

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.http is not None and self.http.owns(pid):
                self.http.exited(os.waitstatus_to_exitcode(status), time.monotonic(),
                                 self.stopping)  # fmt: skip
                continue
            w = self.workers.pop(pid, None)
            if w is not None:
                self._on_exit(w, os.waitstatus_to_exitcode(status))

    def _on_exit(self, w: WorkerHandle, code: int) -> None:
        for msg in w.channel.read() or []:
            w.on_message(msg)
        if w.channel.rfd in self.fd_owner:
            self.poller.unregister(w.channel.rfd)
            del self.fd_owner[w.channel.rfd]
        w.channel.close()
        how = f"exit code {code}" if code >= 0 else f"killed by {signal.Signals(-code).name}"
        reason = f"worker process died ({how})"
        # A death counts a stall only against the jobs whose code ran in it (and, below, those
        # leased too recently to be reported): the others go back without one.
        idle = self.leases.release(w.triples(running=False), stalled=False)
        released = self.leases.release(w.triples(running=True), stalled=code != 0, reason=reason)
        if released is not None and idle is not None:
            released += idle
        swept = self.leases.release_worker(worker_name(self.spec, w.pid), stalled=code != 0,
                                           reason=reason)  # fmt: skip
        if released is not None and swept:
            released += swept
        expected = w.retiring or self.stopping
        level = logging.INFO if expected or (code == 0 and self.burst) else logging.ERROR
        log.log(level, "worker %d (pid %d) exited: %s%s; %s job(s) released", w.index, w.pid, how,
                f" ({w.reason})" if w.reason else "", released)  # fmt: skip
        if not w.up and not expected:
            self.boot.failed(time.monotonic())
            if self.boot.halted:
                log.error("%d workers in a row died before booting; no more respawns (fix the "
                          "cause, then send HUP)", self.boot.failures)  # fmt: skip
                self.notify.status(f"spawning halted: {self.boot.failures} boot failures")
        elif self.burst and code == 0 and not w.retiring and w.generation == self.generation:
            self.desired -= 1
            if self.desired <= 0:
                self.stop(False, "burst: queues empty")

    def _timers(self, now: float) -> None:
        assert self.redis is not None
        self.leases.tick(self._held, self._lease_news)
        if self.periodic is not None:
            self.periodic.tick(now)
        if now >= self.next_control:
            self.next_control = now + CONTROL_EVERY
            self.control.poll(self)
        if now >= self.next_beat:
            self.next_beat = now + self.beat
            for w in self.workers.values():
                w.sample()
                w.channel.flush()
            self.beats += 1
            index = self.beats % 5 == 1  # every 10 s: the masters index, the registered tasks
            tasks = registered.entry(self.spec.queues, registry.describe()) if index else ""
            self.control.publish(self.status(), index=index, tasks=tasks)
            jobs = sum(len(w.jobs) for w in self.workers.values())
            self.notify.status(f"{len(self.workers)} workers, {jobs} jobs in flight"
                               f"{', quiet' if self.quiet else ''}"
                               f"{', Redis down' if self.redis.down_since else ''}")  # fmt: skip
            if self.stopping:
                remaining = max((w.kill_at or now) - now for w in self.workers.values()) if \
                    self.workers else 0  # fmt: skip
                self.notify.extend_timeout(remaining + 5)
        self.autoscale.tick(now, self)
        if self.http is not None:
            self.http.tick(now, self.stopping)
        self.notify.watchdog(now)
        if self.draining and not self.stopping and not any(w.jobs for w in self.workers.values()):
            self.stop(False, "drained")

    def _held(self) -> dict[int, list[tuple[str, str, str]]]:
        return {pid: w.triples() for pid, w in self.workers.items() if w.jobs}

    def _lease_news(self, pid: int, lost: list[str], cancelled: list[str]) -> None:
        w = self.workers.get(pid)
        if w is not None:
            if lost:
                w.channel.send({"t": "lost", "ids": lost})
            if cancelled:
                w.channel.send({"t": "cancel", "ids": cancelled})

    # -- reconciling ---------------------------------------------------------------------------
    def current(self) -> list[WorkerHandle]:
        return [w for w in self.workers.values()
                if w.generation == self.generation and not w.retiring]  # fmt: skip

    def _missing(self) -> int:
        return 0 if self.stopping else self.desired - len(self.current())

    def _manage(self, now: float) -> None:
        missing = self._missing()
        if missing > 0 and self.boot.may_spawn(now):
            for _ in range(missing if self.boot.failures == 0 else 1):
                self._spawn()
        elif missing < 0:
            extra = sorted(self.current(), key=lambda w: (w.busy, -w.spawned))[:-missing]
            for w in extra:
                log.info("retiring worker %d (pid %d): scaled down", w.index, w.pid)
                w.retire("scaled down", now + self.spec.grace + 2.0)
        if not self.ready_sent and self.workers and all(w.up for w in self.workers.values()):
            self.ready_sent = True
            self.notify.ready(f"{len(self.workers)} workers up")
            log.info("all %d workers up", len(self.workers))

    def _spawn(self) -> None:
        used = {w.index for w in self.current()}
        index = next(i for i in range(1, len(used) + 2) if i not in used)
        close = [self.wake_r, self.wake_w, *self.fd_owner]
        close += [w.channel.wfd for w in self.workers.values()]
        if self.notify._sock is not None:
            close.append(self.notify._sock.fileno())
        pid, channel = fork_worker(self.spec, index, self.quiet or self.draining, close)
        self.workers[pid] = WorkerHandle(
            pid, index, self.generation, channel, self.spec.concurrency
        )
        self.poller.register(channel.rfd, select.POLLIN)
        self.fd_owner[channel.rfd] = pid
        log.info("spawned worker %d (pid %d, generation %d)", index, pid, self.generation)

    def _kill(self, w: WorkerHandle, graceful: bool) -> None:
        if graceful:
            self.leases.release(w.triples(), stalled=False)
        w.kill_group()

    def broadcast_signal(self, sig: int) -> None:
        for w in self.workers.values():
            w.send_signal(sig)

    # -- operations shared by signals and control commands --------------------------------------
    def scale(self, n: int, why: str) -> Reply:
        """A manual change (tqctl scale, TTIN/TTOU): with the autoscaler on, it also pins."""
        ok, message, data = self.resize(n, why)
        if ok:
            self.autoscale.pin(n, why)
        return ok, message, data

    def resize(self, n: int, why: str) -> Reply:
        if not 1 <= n <= 1024:
            return False, f"worker count must be between 1 and 1024, got {n}", {}
        if self.stopping:
            return False, "the master is stopping", {}
        old, self.desired = self.desired, n
        log.info("worker count %d -> %d (%s)", old, n, why)
        return True, f"workers {old} -> {n}", {"desired": n}

    def autoscaler(self, pin: int | None, unpin: bool) -> Reply:
        return self.autoscale.command(self, pin, unpin)

    def set_quiet(self, quiet: bool, why: str) -> Reply:
        self.quiet = quiet
        if not quiet:
            self.draining = False
        for w in self.workers.values():
            w.channel.send({"t": "quiet", "on": quiet})
        log.info("%s (%s)", "quiet: fetching stopped" if quiet else "resumed fetching", why)
        return True, "quiet" if quiet else "resumed", {}

    def drain(self, why: str) -> Reply:
        self.set_quiet(True, why)
        self.draining = True
        jobs = sum(len(w.jobs) for w in self.workers.values())
        return True, f"draining: stopping once {jobs} job(s) in flight finish", {"jobs": jobs}

    def reload(self, why: str) -> Reply:
        return self.reloader.start(why)

    def stop(self, fast: bool, why: str) -> Reply:
        now = time.monotonic()
        if not self.stopping:
            self.notify.stopping()
        if fast and not self.fast or not self.stopping:
            self.stopping, self.fast = True, self.fast or fast
            grace = FAST_GRACE if fast else self.spec.grace + 2.0
            log.info("%s stop (%s): %d workers", "fast" if fast else "graceful", why,
                     len(self.workers))  # fmt: skip
            for w in self.workers.values():
                w.retire("stopping", now + grace, signal.SIGQUIT if fast else signal.SIGTERM)
        return True, "stopping" + (" fast" if fast else ""), {}

    def schedules_changed(self, why: str) -> Reply:
        if self.periodic is None:
            return True, "no scheduler here (--enable-scheduler is off)", {}
        self.periodic.wake()
        return True, "scheduler: looking at the schedules again", {}

    def dump(self, why: str) -> Reply:
        log.warning("stack dump (%s): master pid %d, then %d workers", why, self.pid,
                    len(self.workers))  # fmt: skip
        faulthandler.dump_traceback(sys.stderr, all_threads=True)
        self.broadcast_signal(signal.SIGUSR2)
        return True, f"stacks of the master and {len(self.workers)} workers dumped to the log", {}

    def status(self) -> dict[str, Any]:
        cfg = self.cfg.as_dict(redacted=True)
        return {
            "id": self.id, "host": self.host, "pid": self.pid, "version": __version__,
            "started": self.started, "queues": self.spec.queues, "prefix": self.spec.prefix,
            "config": {k: cfg[k] for k in ("redis", "workers", "autoscaler", "scheduler")},
            "desired": self.desired, "actual": len(self.current()), "quiet": self.quiet,
            "draining": self.draining, "stopping": self.stopping, "generation": self.generation,
            "spawn_halted": self.boot.halted, "redis_down": self.redis.down_since is not None,
            "autoscaler": self.autoscale.describe(time.monotonic()),
            "http": self.http.describe() if self.http is not None else None,
            "workers": [w.describe() for w in sorted(self.workers.values(), key=lambda w: w.index)],
        }  # fmt: skip

    def _finish(self) -> None:
        for w in list(self.workers.values()):
            self._kill(w, True)
        end = time.monotonic() + 5
        while self.workers and time.monotonic() < end:
            self._reap()
            time.sleep(0.01)
        if self.http is not None:
            self.http.kill_now()
        if self.leases.pending or self.leases.pending_workers:
            self.leases._retry_pending()
        self._drop_inbox()
        self.control.unregister()
        self.notify.close()
        signal.set_wakeup_fd(-1)
        log.info("master %s stopped", self.id)
