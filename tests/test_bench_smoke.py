"""The benchmark harness still runs: 500 jobs through taskqueue only, results written.

No timing is asserted; only that every phase completed and produced its figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_harness_runs_taskqueue_with_sync_and_async_tasks(tmp_path: Path) -> None:
    cmd = [
        sys.executable, str(ROOT / "bench" / "run.py"), "--no-venv", "--only", "taskqueue,taskqueue-async",
        "--jobs", "500", "--enqueue-jobs", "200", "--runs", "1", "--quick",
        "--latency-seconds", "0.5", "--idle-seconds", "0.5", "--no-backlog",
        "--no-readme", "--out", str(tmp_path),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=420, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    result = json.loads((tmp_path / "latest.json").read_text())
    assert result["skipped"] == {}
    assert set(result) >= {"date", "machine", "redis", "settings", "libraries"}
    import redis  # the run records the Redis client it measured through

    assert result["machine"]["clients"]["redis"] == redis.__version__
    assert set(result["libraries"]) == {"taskqueue", "taskqueue-async"}
    assert "sync task" in result["libraries"]["taskqueue"]["config"]
    assert "async task" in result["libraries"]["taskqueue-async"]["config"]
    for kind in result["libraries"].values():  # both task kinds drained every job
        assert kind["runs"][0]["drain"]["rate"] > 0
        assert kind["runs"][0]["load"]["load1"] >= 0
    lib = result["libraries"]["taskqueue"]
    assert lib["bulk_api"] == "enqueue_many"
    run = lib["runs"][0]
    assert run["enqueue_single"]["rate"] > 0
    assert run["enqueue_bulk"]["rate"] > 0
    assert run["drain"]["rate"] > 0 and run["drain"]["cmds_per_job"] > 0
    assert run["drain"]["cpu_per_1000"] > 0
    assert run["latency"]["samples"] >= 50
    assert run["latency"]["p50_ms"] <= run["latency"]["p99_ms"]
    assert run["idle"]["uss_total"] > 0 and run["idle"]["processes"]
    for key in ("drain_rate", "enqueue_rate", "bulk_rate", "latency_p99_ms", "idle_uss",
                "idle_cmds_per_s_per_worker", "cmds_per_job", "cpu_per_1000"):  # fmt: skip
        assert lib["summary"][key]["median"] is not None, key
    scaling = lib["scaling"]
    assert set(scaling) == {"processes", "concurrency", "payload"}
    assert set(scaling["payload"]) == {"100 B", "10 KB", "500 KB"}
    assert "taskqueue" in proc.stdout  # the table was printed
