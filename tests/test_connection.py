"""taskqueue.connection: the [redis] pool size and timeouts, observed on a real server."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time

import pytest
import redis

from taskqueue import TaskQueue, task
from taskqueue.connection import RedisSettings, connect, connect_async
from taskqueue.testing import wait_for
from taskqueue.worker import Worker


def named(server: redis.Redis, name: str, after: int = 0) -> list[dict]:
    """Connections on the server whose CLIENT SETNAME is ``tq:<name>:<this pid>`` (opened after
    client id ``after``: earlier tests of this process may have left theirs)."""
    me = f"tq:{name}:{os.getpid()}"
    return [c for c in server.client_list() if c.get("name") == me and int(c["id"]) > after]


def test_pool_size_bounds_the_connections_of_a_client(redis_url) -> None:
    server = redis.Redis.from_url(redis_url)
    client = connect(RedisSettings(redis_url, pool_size=2), name="bounded")
    peak = 0
    done = []

    def wait() -> None:
        client.blpop(["tq-test:nothing"], timeout=0.5)
        done.append(1)

    threads = [threading.Thread(target=wait) for _ in range(6)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, len(named(server, "bounded")))
        time.sleep(0.05)
    assert len(done) == 6  # the callers beyond the bound waited, none failed
    assert peak == 2
    client.close()


def test_pool_size_bounds_the_connections_of_a_worker(redis_url, reg) -> None:
    @task(name="nap", registry=reg)
    async def nap() -> None:
        await asyncio.sleep(0.05)

    server = redis.Redis.from_url(redis_url)
    tq = TaskQueue(RedisSettings(redis_url, pool_size=2), registry=reg)
    ids = tq.enqueue_many([(nap, (), {})] * 60)
    after = server.client_id()
    worker = Worker(tq, max_concurrent_tasks=20, registry=reg)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    peak = 0
    try:
        while tq.status(ids[-1]).state != "succeeded" or worker.running:
            peak = max(peak, len(named(server, "worker", after)))
            time.sleep(0.01)
    finally:
        worker.stop()
        thread.join(30)
    assert all(tq.status(i).state == "succeeded" for i in ids)
    assert 1 <= peak <= 2


def test_command_timeout_applies_to_every_command() -> None:
    """A server that accepts but never answers: the command fails after command_timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}"
        client = connect(RedisSettings(url, command_timeout=0.3, connection_timeout=0.7))
        kwargs = client.connection_pool.connection_kwargs
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.3, 0.7)
        started = time.monotonic()
        with pytest.raises(redis.exceptions.TimeoutError):
            client.ping()
        assert time.monotonic() - started < 4.0  # well below the 5 s default


@pytest.mark.cluster
def test_a_blocking_wait_may_last_longer_than_the_command_timeout(redis_url) -> None:
    """Also on a fresh connection, whose handshake (HELLO, CLIENT SETNAME) runs between the
    wait being packed and sent (the asyncio cluster client connects that late)."""
    client = connect(RedisSettings(redis_url, command_timeout=0.2))
    assert client.blpop(["tq-test:nothing"], timeout=1) is None
    assert client.ping()

    async def main() -> None:
        aclient = connect_async(RedisSettings(redis_url, command_timeout=0.2))
        assert await aclient.blpop(["tq-test:nothing"], timeout=1) is None
        assert await aclient.ping()
        await aclient.aclose()

    asyncio.run(main())


def test_settings_come_from_the_config(tmp_path) -> None:
    from taskqueue.config import TaskQueueConfig

    path = tmp_path / "tq.toml"
    path.write_text(
        '[redis]\nurl = "redis://h:1"\npool_size = 3\nconnection_timeout = 2\ncommand_timeout = 4\n'
    )
    settings = RedisSettings.from_config(TaskQueueConfig.from_file(path))
    assert settings == RedisSettings("redis://h:1", 3, 2.0, 4.0)


def test_the_master_keeps_to_its_pool_size(redis_url, masters) -> None:
    m = masters(redis_url, "--workers", "1", env={"TASKQUEUE_REDIS__POOL_SIZE": "2"})
    m.wait_workers(1)
    server = redis.Redis.from_url(redis_url)
    wait_for(lambda: [c for c in server.client_list() if c.get("name") == f"tq:master:{m.pid}"],
             20, "the master's connections")  # fmt: skip
    for _ in range(10):
        assert len([c for c in server.client_list() if c.get("name") == f"tq:master:{m.pid}"]) <= 2
        time.sleep(0.1)
