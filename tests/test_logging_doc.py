"""docs/logging.md: every jq recipe finds records in the JSON log of a real worker run."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import running_worker

from taskqueue import TaskQueue, logs, task
from taskqueue.config import TaskQueueConfig
from taskqueue.registry import Registry
from taskqueue.testing import wait_for

DOC = Path(__file__).resolve().parent.parent / "docs" / "logging.md"


def recipes() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S)
    return [line for b in blocks for line in b.splitlines() if line.startswith("jq ")]


def test_the_doc_names_a_recipe_for_each_of_the_description() -> None:
    text = " ".join(recipes())
    for needle in ('.operation == "scaling_decision"', '.event_type == "performance_metric"',
                   ".error_chain", 'select(.event == "succeeded")', "select(.event)",
                   "'.level'"):  # fmt: skip
        assert needle in text, needle


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed (.ci/run installs it)")
def test_every_jq_recipe_finds_records_in_a_real_worker_log(redis_url, tmp_path) -> None:
    reg = Registry()

    @task(name="doc.add", registry=reg)
    async def add(a, b):
        return a + b

    @task(name="doc.charge", registry=reg, max_retries=1, retry_backoff=0.01)
    def charge(order):
        try:
            raise ConnectionError("payment gateway timed out")
        except ConnectionError as exc:
            raise RuntimeError(f"cannot charge order {order}") from exc

    path = tmp_path / "worker.log"
    env = {"LOG_FORMAT": "json", "TASKQUEUE_LOGGING__ENABLE_PERFORMANCE_MONITORING": "true",
           "TASKQUEUE_METRICS__EXPORT_INTERVAL": "0.3"}  # fmt: skip
    with path.open("w") as stream:
        handler = logs.configure_logging_from_config(TaskQueueConfig.load(env=env), stream)
        try:
            tq = TaskQueue(redis_url, registry=reg)
            ids = [tq.enqueue(add, i, i) for i in range(20)]
            bad = tq.enqueue(charge, 42)
            with running_worker(tq, reg):
                wait_for(lambda: tq.status(bad).state == "dead", 30, "the failing job dead")
                wait_for(lambda: "performance_metric" in path.read_text(), 30, "a perf record")
            assert all(tq.status(i).state == "succeeded" for i in ids)
            # the autoscaler (issue 12) logs its decisions through this same function
            logs.scaling_decision(logging.getLogger("taskqueue.master"), "hold",
                                  ["metrics within thresholds"], workers=2, target=2)  # fmt: skip
        finally:
            logging.getLogger().removeHandler(handler)
            logs.set_performance_interval(None)
    for cmd in recipes():
        out = subprocess.run(cmd, shell=True, cwd=tmp_path, capture_output=True, text=True,
                             timeout=30)  # fmt: skip
        assert out.returncode == 0 and out.stdout.strip(), f"{cmd}: {out.stderr or 'no output'}"
