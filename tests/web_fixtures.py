"""Fixtures for the HTTP API tests: ``task-worker web`` for real (uvicorn on a free loopback
port), talked to with httpx.

``web(url, *flags, env={...})`` starts a server and waits until it answers; every server a test
started is stopped at teardown.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from taskqueue.testing import wait_for
from taskqueue.testing.server import free_port

ROOT = Path(__file__).resolve().parent.parent


class WebProc:
    def __init__(self, url: str | None, flags: list[str], tmp: Path, n: int, env: dict[str, str]):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.logpath = tmp / f"web-{n}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TASKQUEUE_")}
        full_env.update(env)
        cmd = [sys.executable, "-m", "taskqueue.cli.worker", "web", "--port", str(self.port),
               *(["-r", url] if url else []), *flags]  # fmt: skip
        self._log = open(self.logpath, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=full_env)  # fmt: skip
        self.http = httpx.Client(base_url=self.base, timeout=30)

    def log(self) -> str:
        return self.logpath.read_text(errors="replace")

    def wait_up(self, path: str = "/tasks/uptime", timeout: float = 30) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"web server exited {self.proc.returncode}: {self.log()}")
            try:
                self.http.get(path)
                return True
            except httpx.TransportError:
                return False

        wait_for(up, timeout, f"HTTP server on port {self.port}")

    def get(self, path: str, **kw) -> httpx.Response:
        return self.http.get(path, **kw)

    def close(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Callable[..., WebProc]]:
    started: list[WebProc] = []

    def start(url: str | None, *flags: str, env: dict[str, str] | None = None,
              wait: str | None = "/tasks/uptime") -> WebProc:  # fmt: skip
        w = WebProc(url, list(flags), tmp_path, len(started), env or {})
        started.append(w)
        if wait:
            w.wait_up(wait)
        return w

    yield start
    for w in started:
        w.close()
