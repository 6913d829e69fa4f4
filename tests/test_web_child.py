"""The worker master's supervised HTTP child: served on --http, respawned after SIGKILL, stopped
with the pool (real master, real signals, real HTTP)."""

from __future__ import annotations

import os
import signal

import httpx
import psutil
import pytest

from taskqueue import TaskQueue
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


def test_two_masters_add_up_and_their_tasks_are_listed(masters, web, redis_url) -> None:
    a = masters(redis_url, "-w", "1", "--max-concurrent-tasks", "3")
    b = masters(redis_url, "-w", "2", "--max-concurrent-tasks", "3")
    a.wait_workers(1)
    b.wait_workers(2)
    tq = TaskQueue(redis_url)
    ids = [tq.enqueue_with("m.noop", (i,), strict=False) for i in range(200)]
    wait_for(lambda: all(tq.status(i).state == "succeeded" for i in ids[-5:]) and
             tq.queue_lengths()["default"]["queued"] == 0, 60, "the jobs done")  # fmt: skip
    srv = web(redis_url)

    def settled() -> dict | None:
        w = srv.get("/tasks/metrics/workers").json()
        done = sum(x["processed"] for x in w["workers"])
        return w if len(w["masters"]) == 2 and done == 200 else None

    w = wait_for(settled, 30, "both masters' status records with 200 jobs done")
    assert len(w["workers"]) == 3 and sum(m["slots"] for m in w["masters"]) == 9
    assert srv.get("/tasks/stats").json()["queues"]["default"]["succeeded"] == 200
    reg = {t["name"]: t for t in srv.get("/tasks/registered").json()["tasks"]}
    assert (
        sorted(reg["m.noop"]["publishers"]) == sorted([a.id, b.id]) and reg["m.noop"]["consistent"]
    )
    assert reg["m.spin"]["timeout"] == 1 and reg["m.spin"]["max_retries"] == 1
    info = srv.get("/tasks/registry/info").json()
    assert info["tasks_total"] == len(reg) and set(info["publishers"]) == {a.id, b.id}
    tq.close()


def test_the_http_child_exits_when_its_master_is_killed(masters, redis_url) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    m = masters(redis_url, "-w", "1", "--http", f"127.0.0.1:{port}")
    child = wait_for(lambda: web_pid(base), 60, "the HTTP child answering")
    os.kill(m.pid, signal.SIGKILL)
    m.proc.wait(10)
    wait_for(lambda: not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie",
             30, "the orphaned HTTP child to exit")  # fmt: skip
