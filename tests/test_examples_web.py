"""examples/fastapi_app.py runs: uvicorn serves the user's route and the mounted API."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from web_fixtures import ROOT

from taskqueue.testing import wait_for
from taskqueue.testing.server import free_port


@pytest.mark.slow
def test_the_fastapi_example_serves_its_routes_and_the_mounted_api(redis_url, tmp_path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKQUEUE_")}
    env["REDIS_URL"] = redis_url
    log = open(tmp_path / "uvicorn.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "examples.fastapi_app:app", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def get(path: str) -> httpx.Response | None:
        try:
            return httpx.get(base + path, timeout=10)
        except httpx.TransportError:
            assert proc.poll() is None, (tmp_path / "uvicorn.log").read_text()
            return None

    try:
        health = wait_for(lambda: get("/tasks/health"), 60, "the example app")
        assert health.status_code == 200 and health.json()["status"] == "healthy"
        assert get("/hello").json() == {"hello": "world"}
        assert get("/tasks/metrics/summary").status_code == 200
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
