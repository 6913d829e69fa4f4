"""A config file's settings reach the master and its worker processes, observed from outside."""

from __future__ import annotations

import json
import os
import signal
import time

import taskqueue
from taskqueue import TaskQueue
from taskqueue.config import TaskQueueConfig
from taskqueue.keys import Keys
from taskqueue.testing import wait_for


def _conf(tmp_path, text: str):
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return path


def test_a_config_file_reaches_the_master_and_its_workers(redis_url, masters, tmp_path) -> None:
    path = _conf(
        tmp_path,
        f"""
[redis]
url = "{redis_url}"
key_prefix = "tqs"
namespace = "cfgtest"
[workers]
initial_count = 2
max_concurrent_tasks = 3
heartbeat_interval = 2.5
hung_timeout = 30
queues = ["cq1", "cq2"]
imports = ["tests.tasks_for_master"]
worker_prefix = "cfgw"
lease_seconds = 7
max_stalls = 0
""",
    )
    tq = TaskQueue.from_config(TaskQueueConfig.from_file(path))
    assert tq.keys.base == Keys("tqs", "cfgtest").base
    m = masters(redis_url, "--config", str(path), imports="")

    def st() -> dict:
        raw = tq.redis.get(tq.keys.master(m.id))
        return json.loads(raw) if raw else {}

    wait_for(lambda: len([w for w in st().get("workers", []) if w["state"] == "running"]) == 2,
             30, "two workers under the configured prefix and namespace")  # fmt: skip
    assert {w["slots"] for w in st()["workers"]} == {3}
    assert st()["queues"] == ["cq1", "cq2"]

    # queues and imports: a job on cq2 runs (task from the imported module), one on default waits
    assert tq.result(tq.enqueue_with("m.noop", (7,), queue="cq2", strict=False), timeout=30) == 7
    waiting = tq.enqueue_with("m.noop", (1,), queue="default", strict=False)

    # lease_seconds and worker_prefix, read off the running job
    long = tq.enqueue_with("m.sleep", (60,), queue="cq1", strict=False)
    wait_for(lambda: tq.status(long).state == "active", 30, "the long job running")
    rec = tq.redis.hgetall(tq.keys.job(long))
    worker = rec[b"worker"].decode()
    assert worker.startswith("cfgw-")
    lease_left = tq.redis.zscore(tq.keys.active("cq1"), long) - time.time() * 1000
    assert 3000 < lease_left <= 7500, lease_left

    # heartbeat_interval as given (no 1 s cap): idle reports are up to 2.5 s apart
    ages = []
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline and max(ages, default=0) < 1.2:
        ages += [w["beat_s"] for w in st()["workers"]]
        time.sleep(0.5)
    assert 1.2 <= max(ages) < 2.5 + 2.0, ages

    # max_stalls = 0: the first loss of its worker sends the job to the dead letter
    os.kill(int(worker.rsplit("-", 1)[1]), signal.SIGKILL)
    wait_for(lambda: tq.status(long).state == "dead", 30, "the stalled job dead-lettered")
    assert tq.status(waiting).state == "queued"
    assert m.stop() == 0
    taskqueue.set_default(None)
    tq.close()


def test_auto_register_off_registers_only_the_listed_tasks(redis_url, masters, tmp_path) -> None:
    path = _conf(
        tmp_path,
        f"""
[redis]
url = "{redis_url}"
[workers]
initial_count = 1
tasks = ["tests.tasks_listed:kept", "tests.tasks_listed:plain"]
[auto_register]
enabled = false
""",
    )
    m = masters(redis_url, "--config", str(path), imports="")
    tq = TaskQueue(redis_url)
    assert tq.result(tq.enqueue_with("listed.kept", (1,), strict=False), timeout=30) == 2
    plain = tq.enqueue_with("tests.tasks_listed.plain", (2,), strict=False)
    assert tq.result(plain, timeout=30) == 20
    dropped = tq.enqueue_with("listed.dropped", (3,), strict=False)
    wait_for(lambda: tq.status(dropped).state == "dead", 30, "the unlisted task refused")
    assert "unknown task 'listed.dropped'" in tq.status(dropped).error
    assert m.stop() == 0
    tq.close()
