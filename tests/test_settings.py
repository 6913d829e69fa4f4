"""Every setting does what it says: each names the test that proves it; the product description's
configuration loads; discovery, from_config, the default client and the enqueue limit."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest
from conftest import running_worker

import taskqueue
from taskqueue import AsyncTaskQueue, TaskQueue, task
from taskqueue.config import TaskQueueConfig
from taskqueue.config.model import discover
from taskqueue.config.schema import SETTINGS
from taskqueue.errors import NoDefaultClient, PayloadTooLarge
from taskqueue.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
DESCRIPTION = Path(__file__).parent / "data" / "product-description"


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def test_every_setting_names_the_test_that_proves_it() -> None:
    """A setting without an effect has no test to name: remove it, or make it work and name the
    test. ``owner`` marks the settings another issue is building right now."""
    missing, broken = [], []
    for s in SETTINGS:
        if not s.proof:
            if not s.owner.startswith("issue "):
                missing.append(s.path)
            continue
        file, _, name = s.proof.partition("::")
        path = ROOT / file
        if not path.is_file() or name.split("[")[0] not in _test_names(path):
            broken.append(f"{s.path}: {s.proof}")
    assert not missing, f"settings with no test that proves them: {missing}"
    assert not broken, f"settings naming a test that does not exist: {broken}"


@pytest.mark.parametrize("path", sorted(DESCRIPTION.glob("*.toml")), ids=lambda p: p.name)
def test_every_toml_block_of_the_product_description_loads(path: Path) -> None:
    cfg = TaskQueueConfig.from_file(path)
    assert cfg.path == str(path)


def test_the_production_block_is_used_as_given() -> None:
    cfg = TaskQueueConfig.from_file(DESCRIPTION / "production-task-queue.toml")
    assert cfg.redis.command_timeout == 5 and cfg.workers.heartbeat_interval == 30
    assert cfg.redis.pool_size == 20 and cfg.redis.connection_timeout == 10


def test_max_payload_bytes_is_the_enqueue_limit(redis_url, tmp_path) -> None:
    reg = Registry()

    @task(name="echo", registry=reg)
    def echo(x):
        return x

    conf = tmp_path / "tq.toml"
    conf.write_text(f'[redis]\nurl = "{redis_url}"\n[limits]\nmax_payload_bytes = 2048\n')
    tq = TaskQueue.from_config(conf, registry=reg)
    assert tq.enqueue(echo, "x" * 1000)
    with pytest.raises(PayloadTooLarge, match="over the limit of 2048 bytes"):
        tq.enqueue(echo, "x" * 4000)
    tq.close()


def test_task_queue_toml_in_the_working_directory_is_discovered(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TASKQUEUE_CONFIG", raising=False)
    assert discover() is None
    (tmp_path / "task-queue.toml").write_text('[redis]\nnamespace = "found"\n')
    cfg = TaskQueueConfig.load(env={})
    assert cfg.redis.namespace == "found" and cfg.path == "task-queue.toml"
    other = tmp_path / "elsewhere.toml"
    other.write_text('[redis]\nnamespace = "env"\n')
    assert TaskQueueConfig.load(env={"TASKQUEUE_CONFIG": str(other)}).redis.namespace == "env"


def test_from_config_builds_a_working_client_and_delay_runs_a_job(
    redis_url, tmp_path, monkeypatch
) -> None:
    reg = Registry()

    @task(name="add", registry=reg)
    def add(a, b):
        return a + b

    monkeypatch.chdir(tmp_path)
    (tmp_path / "task-queue.toml").write_text(
        f'[redis]\nurl = "{redis_url}"\nnamespace = "webapp"\npool_size = 3\n'
    )
    taskqueue.set_default(None)
    with pytest.raises(NoDefaultClient, match="set_default"):
        add.delay(2, 3)
    tq = TaskQueue.from_config(registry=reg)
    try:
        assert (tq.keys.base, tq.settings.pool_size) == ("tq:{webapp}:", 3)
        with running_worker(tq, reg):
            assert tq.result(add.delay(2, 3), timeout=30) == 5
            job = add.enqueue_with((4, 5), delay=0.2)
            assert tq.result(job, timeout=30) == 9
    finally:
        taskqueue.set_default(None)
        tq.close()


def test_async_from_config(redis_url) -> None:
    reg = Registry()

    @task(name="mul", registry=reg)
    def mul(a, b):
        return a * b

    env = {"TASKQUEUE_REDIS__URL": redis_url, "TASKQUEUE_REDIS__NAMESPACE": "asyncweb"}
    cfg = TaskQueueConfig.load(env=env)

    async def main() -> str:
        tq = AsyncTaskQueue.from_config(cfg, registry=reg)
        try:
            job = await mul.delay(6, 7)
            return (await tq.status(job)).queue
        finally:
            taskqueue.set_default(None)
            await tq.close()

    assert asyncio.run(main()) == "default"


def test_enqueue_with_expires_discards_a_job_not_started_in_time(redis_url) -> None:
    import time

    from taskqueue.errors import TaskFailed
    from taskqueue.testing import assert_conserved

    reg = Registry()

    @task(name="late", registry=reg)
    def late(x):
        return x

    tq = TaskQueue(redis_url, namespace="expiry", registry=reg)
    taskqueue.set_default(tq)
    try:
        stale = late.enqueue_with((1,), expires=0.2)
        fresh = tq.enqueue_with(late, (2,), expires=600)
        time.sleep(0.5)  # no worker yet: the first one's time runs out
        with running_worker(tq, reg):
            assert tq.result(fresh, timeout=30) == 2
            with pytest.raises(TaskFailed, match="expired"):
                tq.result(stale, timeout=30)
        assert tq.status(stale).state == "expired"
        assert tq.redis.hget(tq.keys.stats, "default@late:expired") == b"1"
        assert assert_conserved(tq.redis, [stale, fresh], tq.keys) == {"expired": 1, "succeeded": 1}
    finally:
        taskqueue.set_default(None)
        tq.close()
