"""Habits of Unix and of the product description: help, --version, `dead list`, the banner, the
trace level, debug logs of what a worker does, and the hint about other namespaces."""

from __future__ import annotations

import json
import subprocess
import sys

from taskqueue import TaskQueue, __version__
from taskqueue.cli.tqctl import main as tqctl


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_plain_task_worker_prints_its_help_and_both_clis_have_version() -> None:
    plain = run("taskqueue.cli.worker")
    assert plain.returncode == 0 and "usage: task-worker" in plain.stdout
    assert "worker" in plain.stdout and "web" in plain.stdout
    for module, name in (("taskqueue.cli.worker", "task-worker"), ("taskqueue.cli.tqctl", "tqctl")):
        out = run(module, "--version")
        assert out.returncode == 0 and out.stdout.strip() == f"{name} {__version__}"


def test_tqctl_dead_list_is_dead(redis_url, capsys) -> None:
    client = TaskQueue(redis_url)
    dead = client.enqueue_with("t", (1,), strict=False, max_retries=0)
    job = client.run(client.broker.fetch(["default"], 1, "t", "w")).jobs[0]
    client.run(client.broker.fail(job, "ValueError: boom", "", 0))
    assert tqctl(["-r", redis_url, "dead", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert tqctl(["-r", redis_url, "dead", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == listed and listed[0]["id"] == dead
    assert tqctl(["-r", redis_url, "dead", "list"]) == 0
    assert "ValueError: boom" in capsys.readouterr().out
    client.close()


def test_banner_trace_level_debug_logs_and_the_namespace_hint(redis_url, masters, capsys) -> None:
    env = {"LOG_LEVEL": "trace", "TASKQUEUE_REDIS__NAMESPACE": "dev"}
    m = masters(redis_url, "-w", "1", env=env)
    m.wait_log("master ")
    tq = TaskQueue(redis_url, namespace="dev")
    assert tq.result(tq.enqueue_with("m.noop", (3,), strict=False), timeout=30) == 3
    m.wait_log("acked a batch")
    log = m.log()
    banner = next(line for line in log.splitlines() if "master " in line and "started" in line)
    assert "namespace dev" in banner and f"127.0.0.1:{redis_url.rsplit(':', 1)[1]}" in banner
    assert "m.noop [default]" in banner and "m.sleep [default]" in banner
    assert "worker " in log and "started: namespace dev on redis://127.0.0.1" in log
    assert "DEBUG" in log and "fetch " in log and "leased 1 of" in log

    # tqctl in the default namespace: no master here, but there is one in 'dev'
    assert tqctl(["-r", redis_url, "status"]) == 0
    out = capsys.readouterr().out
    assert "(none running)" in out
    assert "no master runs in namespace 'default'" in out and "'dev' (1 master)" in out
    assert "TASKQUEUE_REDIS__NAMESPACE=dev" in out
    assert tqctl(["-r", redis_url, "status", "--json"]) == 0
    snap = json.loads(capsys.readouterr().out)
    assert snap["masters"] == []
    assert {"prefix": "tq", "namespace": "dev", "masters": 1} in snap["other_namespaces"]
    assert m.stop() == 0
    tq.close()
