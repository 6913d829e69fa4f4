"""The worker master's supervised HTTP child: served on --http, respawned after SIGKILL, stopped
with the pool (real master, real signals, real HTTP)."""

from __future__ import annotations

import os
import signal

import httpx
import psutil
import pytest

from taskqueue.testing import wait_for
from taskqueue.testing.server import free_port

pytestmark = pytest.mark.slow


def web_pid(base: str) -> int | None:
    try:
        r = httpx.get(f"{base}/tasks/uptime", timeout=5)
    except httpx.TransportError:
        return None
    return r.json()["web"]["pid"] if r.status_code == 200 else None


def test_the_http_child_serves_is_respawned_after_sigkill_and_stops_with_the_pool(
    masters, redis_url
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    m = masters(redis_url, "-w", "1", "--http", f"127.0.0.1:{port}")
    m.wait_workers(1)
    first = wait_for(lambda: web_pid(base), 60, "the HTTP child answering")
    assert psutil.Process(first).ppid() == m.pid
    health = httpx.get(f"{base}/tasks/health", timeout=10).json()
    assert health["components"]["masters"]["ids"] == [m.id]
    assert httpx.get(f"{base}/metrics", timeout=10).status_code == 200  # Prometheus at the root
    os.kill(first, signal.SIGKILL)
    second = wait_for(lambda: (p := web_pid(base)) not in (None, first) and p, 60,
                      "a new HTTP child")  # fmt: skip
    assert psutil.Process(second).ppid() == m.pid
    m.wait_log("HTTP child (pid")
    os.kill(m.pid, signal.SIGTERM)
    assert m.proc.wait(60) == 0
    assert not psutil.pid_exists(second) or psutil.Process(second).status() == "zombie"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/tasks/uptime", timeout=2)


def test_web_enabled_with_routes_off_is_refused(masters, redis_url) -> None:
    m = masters(redis_url, "-w", "1", env={"TASKQUEUE_WEB__ENABLED": "true",
                                           "TASKQUEUE_WEB__AUTO_CONFIGURE_ROUTES": "false"})  # fmt: skip
    assert m.proc.wait(30) == 2 and "auto_configure_routes = false" in m.log()
