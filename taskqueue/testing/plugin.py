"""pytest fixtures backed by real redis-server processes (see ``taskqueue.testing``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from .server import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session, on a free loopback port."""
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of a clean database: flushed before each test."""
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    with redis_server.client() as c:
        c.flushall()
        c.script_flush()
    return redis_server.url


@pytest.fixture
def tq(redis_url: str):
    """A TaskQueue on the clean database."""
    from ..client import TaskQueue

    client = TaskQueue(redis_url)
    yield client
    client.close()


@pytest.fixture
def redis_factory() -> Iterator[Callable[..., RedisServer]]:
    """Start extra servers (``redis_factory(aof=True)``); all are killed after the test."""
    servers: list[RedisServer] = []

    def make(**kwargs: object) -> RedisServer:
        server = RedisServer(**kwargs).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
