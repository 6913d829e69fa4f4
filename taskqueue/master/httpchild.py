"""The master's HTTP child: the HTTP API served from a supervised process (``[web] enabled``
or ``task-worker worker --http ADDR:PORT``), never from the master's own loop.

Duties:
1. Start ``python -m taskqueue.web.child`` in a fresh interpreter (no state or locks of the
   master inherited) in its own session, and hand it the configuration through a pipe on its
   stdin: the token and the Redis password never appear in argv or the environment.
2. Respawn it when it dies, like a worker: after 1 s, doubling up to 30 s while it keeps dying
   within 10 s of its start.
3. Stop it with the pool: SIGTERM when the master stops, SIGKILL if it lingers past 5 s.
The master's reaper (one ``waitpid(-1)`` for all children) reports its exit to ``exited``; it
also exits by itself when the master is gone (it watches its parent).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

from ..config.schema import SETTINGS

log = logging.getLogger("taskqueue.master")

FIRST_DELAY, MAX_DELAY, YOUNG, STOP_GRACE = 1.0, 30.0, 10.0, 5.0


class HttpChild:
    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.next_at = 0.0
        self.delay = FIRST_DELAY
        self.kill_at: float | None = None
        self.spawns = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def address(self) -> str:
        return f"{self.cfg.web.bind}:{self.cfg.web.port}"

    def owns(self, pid: int) -> bool:
        return self.proc is not None and self.proc.pid == pid

    def next_due(self) -> float | None:
        if self.proc is None:
            return self.next_at
        return self.kill_at

    def tick(self, now: float, stopping: bool) -> None:
        """Spawn when due; on stop, TERM then KILL."""
        if stopping:
            self.stop(now)
        elif self.proc is None and now >= self.next_at:
            self._spawn(now)
        if self.proc is not None and self.kill_at is not None and now >= self.kill_at:
            log.warning("HTTP child (pid %d) ignored SIGTERM; killing it", self.proc.pid)
            self._signal(signal.SIGKILL)
            self.kill_at = None

    def _spawn(self, now: float) -> None:
        values = {s.path: self.cfg.get(s.path) for s in SETTINGS}
        payload = json.dumps({"values": values, "parent": os.getpid()}).encode()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "taskqueue.web.child"], stdin=subprocess.PIPE,
                start_new_session=True, close_fds=True,
            )  # fmt: skip
            assert proc.stdin is not None
            proc.stdin.write(payload)
            proc.stdin.close()
        except OSError as exc:
            log.error("cannot start the HTTP child: %s; retrying in %.0f s", exc, self.delay)
            self.next_at = now + self.delay
            self.delay = min(self.delay * 2, MAX_DELAY)
            return
        self.proc, self.started, self.spawns = proc, now, self.spawns + 1
        log.info("spawned the HTTP child (pid %d) on http://%s%s/", proc.pid, self.address,
                 self.cfg.web.route_prefix)  # fmt: skip

    def exited(self, code: int, now: float, stopping: bool) -> None:
        """The reaper saw it exit with ``code`` (negative: killed by that signal)."""
        assert self.proc is not None
        self.proc.returncode = code  # reaped already: keep subprocess from waiting on it
        pid, self.proc, self.kill_at = self.proc.pid, None, None
        how = f"exit code {code}" if code >= 0 else f"killed by {signal.Signals(-code).name}"
        if stopping:
            log.info("HTTP child (pid %d) stopped: %s", pid, how)
            return
        self.delay = min(self.delay * 2, MAX_DELAY) if now - self.started < YOUNG else FIRST_DELAY
        self.next_at = now + self.delay
        log.error("HTTP child (pid %d) died: %s; respawning in %.0f s", pid, how, self.delay)

    def stop(self, now: float) -> None:
        if self.proc is not None and self.kill_at is None:
            self._signal(signal.SIGTERM)
            self.kill_at = now + STOP_GRACE

    def _signal(self, sig: int) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)

    def kill_now(self) -> None:
        """At the master's exit: KILL and reap it if it is still there."""
        if self.proc is None:
            return
        self._signal(signal.SIGTERM)
        end = time.monotonic() + STOP_GRACE
        while time.monotonic() < end:
            pid, status = os.waitpid(self.proc.pid, os.WNOHANG)
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.proc = None
                return
            time.sleep(0.05)
        self._signal(signal.SIGKILL)
        os.waitpid(self.proc.pid, 0)
        self.proc.returncode, self.proc = -9, None

    def describe(self) -> dict[str, Any]:
        return {"pid": self.pid, "address": self.address, "spawns": self.spawns}
