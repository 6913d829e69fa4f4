"""Fixtures for the master tests: launch ``python -m taskqueue.cli.worker worker`` for real.

``masters(url, *flags, env={...})`` starts a master with a pidfile and a log file; every master
and worker process a test started is killed at teardown.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from taskqueue.connection import RedisSettings, connect
from taskqueue.keys import Keys
from taskqueue.testing import wait_for

ROOT = Path(__file__).resolve().parent.parent
TASKS = "tests.tasks_for_master"


class MasterProc:
    def __init__(self, url: str, flags: list[str], tmp: Path, n: int, env: dict[str, str],
                 settings: RedisSettings | None = None, wrapper: str | None = None):  # fmt: skip
        self.url = url
        self.pidfile = tmp / f"master-{n}.pid"
        self.logpath = tmp / f"master-{n}.log"
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("TASKQUEUE_", "NOTIFY_SOCKET", "WATCHDOG_"))}  # fmt: skip
        full_env.update(env)
        cmd = [sys.executable, "-m", "taskqueue.cli.worker", "worker", "-r", url,
               "--pidfile", str(self.pidfile), "--log-format", "compact", *flags]  # fmt: skip
        if wrapper is not None:  # a shell script in front, as deploy tools write them
            cmd = ["sh", "-c", wrapper, "sh", *cmd]
        self._log = open(self.logpath, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=full_env)  # fmt: skip
        self.pid = self.proc.pid
        self.id = f"{socket.gethostname()}:{self.pid}"
        self.redis = connect(settings or url)
        self.seen: set[int] = set()

    def log(self) -> str:
        return self.logpath.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 20, count: int = 1) -> None:
        wait_for(lambda: self.log().count(text) >= count, timeout, f"{text!r} in the master log")

    def status(self) -> dict[str, Any] | None:
        raw = self.redis.get(Keys().master(self.id))
        return json.loads(raw) if raw else None

    def worker_pids(self, state: str | None = "running") -> list[int]:
        st = self.status() or {"workers": []}
        return [w["pid"] for w in st["workers"] if state is None or w["state"] == state]

    def wait_workers(
        self, n: int, timeout: float = 20, exclude: set[int] = frozenset()
    ) -> list[int]:
        """Wait until exactly ``n`` workers run (none of them in ``exclude``); their pids."""

        def ok() -> list[int] | None:
            st = self.status()
            if not st:
                return None
            pids = [w["pid"] for w in st["workers"] if w["state"] == "running"]
            fine = len(pids) == n and len(st["workers"]) == n and not exclude & set(pids)
            return pids if fine else None

        pids = wait_for(ok, timeout, f"{n} running workers")
        self.seen.update(pids)
        return pids

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children()
        except psutil.NoSuchProcess:
            return []

    def send(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.send(signal.SIGTERM)
        return self.wait(timeout)

    def kill_all(self) -> None:
        procs = self.children()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in {p.pid for p in procs} | self.seen:
            with contextlib.suppress(OSError, psutil.Error):
                if "task-worker: worker" in " ".join(psutil.Process(pid).cmdline()):
                    os.killpg(pid, signal.SIGKILL)
        self._log.close()
        self.redis.close()


@pytest.fixture
def masters(tmp_path: Path) -> Iterator[Callable[..., MasterProc]]:
    started: list[MasterProc] = []

    def start(url: str, *flags: str, env: dict[str, str] | None = None,
              imports: str = TASKS, settings: RedisSettings | None = None,
              wrapper: str | None = None) -> MasterProc:  # fmt: skip
        """``settings``: how the test itself reaches Redis (credentials not in ``url``).
        ``wrapper``: a ``sh -c`` script that starts the master from ``"$@"``."""
        args = list(flags) + (["--import", imports] if imports else [])
        m = MasterProc(url, args, tmp_path, len(started), env or {}, settings, wrapper)
        started.append(m)
        return m

    yield start
    for m in started:
        m.kill_all()
