"""pytest fixtures backed by real redis-server processes (see ``taskqueue.testing``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .cluster import LocalCluster
from .ledger import Ledger
from .sentinel import LocalSentinel
from .server import RedisServer, find_redis_server
from .tls import TlsFiles, find_openssl, make_certs, tls_support


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session, on a free loopback port."""
    server = RedisServer().start()
    yield server
    server.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cluster: also run the test on a real Redis Cluster (redis_url is then a "
        "redis+cluster:// URL of the session cluster: 3 primaries with replicas)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``cluster`` that use ``redis_url`` run twice: one server, then the cluster."""
    if metafunc.definition.get_closest_marker("cluster") and "redis_url" in metafunc.fixturenames:
        metafunc.parametrize("redis_url", ["server", "cluster"], indirect=True)


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """URL of a clean database: flushed before each test. For tests marked ``cluster``, once
    on the single server and once on the session cluster (``redis+cluster://``)."""
    if getattr(request, "param", "server") == "cluster":
        return request.getfixturevalue("cluster_url")
    redis_server = request.getfixturevalue("redis_server")
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
def ledger(tmp_path: Path) -> Ledger:
    """An empty execution ledger in the test's tmp dir (see ``taskqueue.testing.ledger``);
    pass ``ledger.env()`` to the worker processes and finish with ``check_ledger``."""
    return Ledger(tmp_path / "ledger.jsonl")


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


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """A real Redis Cluster for the session: 3 primaries, each with a replica."""
    cluster = LocalCluster().start()
    yield cluster
    cluster.close()


@pytest.fixture
def cluster_url(redis_cluster: LocalCluster) -> str:
    """``redis+cluster://`` URL of the session cluster, emptied (and healed, if a test killed a
    node) before each test."""
    if not all(n.alive for n in redis_cluster.nodes):
        for n in redis_cluster.nodes:
            if not n.alive:
                n.start()
        redis_cluster.wait_healthy()
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[LocalSentinel]:
    """A real primary, replica and 3 Sentinels for the session (service ``mymaster``)."""
    sentinel = LocalSentinel().start()
    yield sentinel
    sentinel.close()


@pytest.fixture
def sentinel_url(redis_sentinel: LocalSentinel) -> str:
    """``redis+sentinel://`` URL of the session Sentinel set, emptied (and healed after a
    failover test) before each test."""
    redis_sentinel.heal()
    redis_sentinel.flush()
    return redis_sentinel.url


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A private CA with a server and a client certificate (made with ``openssl``)."""
    if find_openssl() is None:
        pytest.skip("no openssl binary to make test certificates (apt-get install openssl)")
    return make_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def tls_server(tls_certs: TlsFiles) -> Iterator[RedisServer]:
    """A redis-server on TLS only, requiring a client certificate signed by ``tls_certs.ca``."""
    reason = tls_support(find_redis_server())
    if reason:
        pytest.skip(reason)
    server = RedisServer(tls=tls_certs).start()
    yield server
    server.close()
