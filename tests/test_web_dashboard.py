"""The dashboard's routes through real servers: ``task-worker web`` serves the page at ``/`` and
``/tasks/``; a user's app that mounts ``create_app`` under a path of its own serves it there,
with API paths relative to the page; ``POST /tasks/dead/retry-all`` (the page's "Retry all")."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from taskqueue import task
from taskqueue.config import TaskQueueConfig
from taskqueue.testing import free_port, wait_for
from taskqueue.web import create_app
from taskqueue.worker import Worker

TOKEN = "tok-dash-41c9"


def api_base(html: str) -> str:
    return re.search(r'<html lang="en" data-api="([^"]*)"', html).group(1)


def test_page_at_root_and_prefix_with_its_files(web, redis_url) -> None:
    srv = web(redis_url)
    root, prefixed = srv.get("/"), srv.get("/tasks/")
    for r in (root, prefixed):
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-cache"
    assert api_base(root.text) == "tasks/" and 'src="tasks/static/dashboard.js"' in root.text
    assert api_base(prefixed.text) == "./" and 'src="static/dashboard.js"' in prefixed.text
    bare = srv.get("/tasks", follow_redirects=False)
    assert bare.status_code in (307, 308) and bare.headers["location"].endswith("/tasks/")
    for name in ("dashboard.js", "format.js"):
        r = srv.get(f"/tasks/static/{name}")
        assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert srv.get("/tasks/static/dashboard.css").headers["content-type"].startswith("text/css")
    assert srv.get("/tasks/static/nothing.js").status_code == 404
    assert srv.get("/tasks/static/../dashboard.py").status_code == 404


@pytest.fixture
def mounted(redis_url: str) -> Iterator[str]:
    """A user's Starlette app with the API mounted at /ops (route_prefix = ""), served by
    uvicorn on a free port in a thread."""
    cfg = TaskQueueConfig.load(None, cli={"redis.url": redis_url, "web.route_prefix": ""})
    app = Starlette(routes=[Mount("/ops", app=create_app(cfg))])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 30, "uvicorn started")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_page_where_a_user_mounts_the_api(mounted: str) -> None:
    page = httpx.get(mounted + "/ops/")
    assert page.status_code == 200 and api_base(page.text) == "./"
    # the page's relative paths resolve under the mount point
    assert httpx.get(mounted + "/ops/metrics/timeline").status_code == 200
    assert httpx.get(mounted + "/ops/static/format.js").status_code == 200


def test_retry_all_needs_the_token_and_brings_back_every_dead_job(web, client, reg) -> None:
    @task(name="always_fails", registry=reg, max_retries=0)
    def always_fails() -> None:
        raise ValueError("no")

    ids = [client.enqueue(always_fails) for _ in range(3)]
    Worker(client, registry=reg).run(burst=True)
    assert client.redis.zcard(client.keys.dead) == 3
    srv = web(client.url, env={"TASKQUEUE_WEB__TOKEN": TOKEN})
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        assert srv.http.post("/tasks/dead/retry-all", headers=headers).status_code == 401
    assert client.redis.zcard(client.keys.dead) == 3, "a refused write changed nothing"
    r = srv.http.post("/tasks/dead/retry-all", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.json() == {"retried": 3}
    assert client.redis.zcard(client.keys.dead) == 0
    assert sorted(
        i.decode() for i in client.redis.lrange(client.keys.ready("default"), 0, -1)
    ) == sorted(ids)
    assert {client.status(i).state for i in ids} == {"queued"}
