"""Connection URLs pick redis-py's own client: one server, Redis Cluster, Sentinel, TLS with
client certificates; each used end to end (enqueue, a worker, the result), sync and asyncio."""

from __future__ import annotations

import asyncio
import re
import signal

import pytest
import redis
import redis.cluster
from conftest import running_worker

from taskqueue import AsyncTaskQueue, TaskQueue, task
from taskqueue.config import TaskQueueConfig
from taskqueue.config.schema import BY_PATH
from taskqueue.connection import RedisSettings, connect, connect_async, is_cluster
from taskqueue.errors import ConfigError, NotReplicated, RedisRefused, RedisUnavailable
from taskqueue.redact import redact_text, redact_url
from taskqueue.redis_url import BadRedisUrl, RedisTarget, parse_redis_url
from taskqueue.registry import Registry
from taskqueue.testing import LocalCluster, RedisServer, TlsFiles, make_certs


@pytest.mark.parametrize(
    "url, target",
    [
        ("redis://h:1/0", RedisTarget("single", False)),
        ("rediss://h:1/0", RedisTarget("single", True)),
        ("unix:///tmp/r.sock", RedisTarget("single", False)),
        ("redis+cluster://a:7000,b:7001", RedisTarget("cluster", False, (("a", 7000), ("b", 7001)))),
        ("rediss+cluster://u:p%40ss@a", RedisTarget("cluster", True, (("a", 6379),), "u", "p@ss")),
        ("redis+cluster://[::1]:7000/0", RedisTarget("cluster", False, (("::1", 7000),))),
        ("redis+sentinel://s1,s2:5000/mymaster",
         RedisTarget("sentinel", False, (("s1", 26379), ("s2", 5000)), service="mymaster")),
        ("redis+sentinel://:pw@s1:26379/mymaster/3?socket_keepalive=true",
         RedisTarget("sentinel", False, (("s1", 26379),), None, "pw", "mymaster", 3,
                     "socket_keepalive=true")),
    ],
)  # fmt: skip
def test_urls_parse_to_their_client_kind(url: str, target: RedisTarget):
    assert parse_redis_url(url) == target


@pytest.mark.parametrize(
    "url, says",
    [
        ("http://h", "unsupported Redis URL scheme 'http://'"),
        ("redis+cluster://a:1/2", "takes no database"),
        ("redis+sentinel://a:1", "needs the Sentinel service name"),
        ("redis+sentinel://a:1/m/x", "database must be a number"),
        ("redis+cluster://a:1,,b:2", "needs at least one host:port"),
        ("redis+cluster://a:port", "bad port"),
        (
            "redis+cluster://a:1?db=2",
            "takes the database in its path .none: Redis Cluster has only db 0",
        ),
        (
            "redis+sentinel://a:1/m?socket_timeout=2&db=2",
            "takes the database in its path ./service_name/db",
        ),
    ],
)
def test_bad_urls_are_refused_with_what_to_write(url: str, says: str):
    with pytest.raises(BadRedisUrl, match=says):
        parse_redis_url(url)
    assert re.search(says, BY_PATH["redis.url"].validator(url) or "")


def test_credentials_in_multi_host_urls_are_never_shown():
    url = "redis+sentinel://app:s3cret@s1:26379,s2:26379/mymaster"
    assert "s3cret" not in redact_url(url)
    assert "s3cret" not in redact_text(f"cannot reach {url} now")
    assert "s3cret" not in repr(parse_redis_url(url))
    assert "s3cret" not in repr(TaskQueue(url, client=redis.Redis()))


def test_tls_files_need_a_tls_url():
    with pytest.raises(BadRedisUrl, match="tls_ca_file is set but redis.url does not use TLS"):
        RedisSettings("redis://h:1", tls_ca_file="/ca.pem")
    with pytest.raises(BadRedisUrl, match="go together"):
        RedisSettings("rediss://h:1", tls_cert_file="/c.pem")


def round_trip(settings: RedisSettings | str, reg: Registry) -> None:
    """Enqueue (single, many, delayed), work and wait for results, sync and asyncio."""

    @task(name="mul", registry=reg)
    def mul(a: int, b: int) -> int:
        return a * b

    tq = TaskQueue(settings, registry=reg)
    one = tq.enqueue(mul, 6, 7)
    many = tq.enqueue_many([(mul, (i, 2), {}) for i in range(30)])
    later = tq.enqueue_with(mul, (2, 2), delay=0.2)
    with running_worker(tq, reg, queues=["default"]):
        assert tq.result(one, timeout=30) == 42
        assert [tq.result(i, timeout=30) for i in many] == [i * 2 for i in range(30)]
        assert tq.result(later, timeout=30) == 4

        async def from_asyncio() -> int:
            atq = AsyncTaskQueue(settings, registry=reg)
            try:
                return await atq.result(await atq.enqueue(mul, 3, 3), timeout=30)
            finally:
                await atq.close()

        assert asyncio.run(from_asyncio()) == 9
    assert tq.queue_lengths()["default"]["queued"] == 0
    tq.close()


def test_cluster_url_gives_redis_py_cluster_clients(cluster_url: str, reg: Registry):
    sync = connect(cluster_url)
    assert isinstance(sync, redis.cluster.RedisCluster) and is_cluster(sync)
    assert len(sync.get_primaries()) == 3
    sync.close()
    assert is_cluster(connect_async(cluster_url))
    round_trip(cluster_url, reg)


def test_sentinel_url_gives_the_current_primary(redis_sentinel, sentinel_url: str, reg: Registry):
    client = connect(sentinel_url, name="probe")
    assert client.info("replication")["role"] == "master"
    assert client.connection_pool.service_name == redis_sentinel.service
    client.close()
    round_trip(sentinel_url, reg)


def tls_settings(server_url: str, certs: TlsFiles, ca=None) -> RedisSettings:
    return RedisSettings(server_url, tls_ca_file=str(ca or certs.ca),
                         tls_cert_file=str(certs.client_cert), tls_key_file=str(certs.client_key))  # fmt: skip


def test_tls_with_client_certificates(tls_server: RedisServer, tls_certs: TlsFiles, reg):
    round_trip(tls_settings(tls_server.url, tls_certs), reg)


def test_a_wrong_ca_says_which_setting_to_fix(tls_server: RedisServer, tls_certs, tmp_path, reg):
    other = make_certs(tmp_path / "other", ca_name="someone else's CA")
    tq = TaskQueue(tls_settings(tls_server.url, tls_certs, ca=other.ca), registry=reg)
    with pytest.raises(RedisRefused) as err:
        tq.queues()
    message = str(err.value)
    assert message.startswith("Redis refused the TLS connection (queues)")
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert f"not signed by the CA in redis.tls_ca_file ({other.ca})" in message
    assert "set redis.tls_ca_file to the CA that signed it" in message


def test_tls_server_refuses_a_client_without_certificate(tls_server: RedisServer, tls_certs):
    tq = TaskQueue(RedisSettings(tls_server.url, tls_ca_file=str(tls_certs.ca)))
    with pytest.raises((RedisRefused, RedisUnavailable)):
        tq.queues()


@pytest.mark.slow
def test_tls_cluster(tls_certs: TlsFiles, tls_server: RedisServer, reg: Registry):
    """rediss+cluster://: the nodes talk TLS to clients and to each other (tls_server only
    makes the test skip when the binary has no TLS)."""
    with LocalCluster(3, 0, tls=tls_certs) as cluster:
        assert cluster.url.startswith("rediss+cluster://")
        round_trip(tls_settings(cluster.url, tls_certs), reg)


def test_config_refuses_tls_files_without_a_tls_url():
    env = {"TASKQUEUE_REDIS__TLS_CA_FILE": "/etc/ca.pem", "REDIS_URL": "redis://h:6379/0"}
    with pytest.raises(ConfigError, match="redis.tls_ca_file is set but redis.url .* does not"):
        TaskQueueConfig.load(env=env)
    env["REDIS_URL"] = "rediss+cluster://h1:7000,h2:7001"
    settings = RedisSettings.from_config(TaskQueueConfig.load(env=env))
    assert settings.target.kind == "cluster" and settings.tls_options() == {
        "ssl_ca_certs": "/etc/ca.pem"
    }
    with pytest.raises(ConfigError, match="redis.url"):
        TaskQueueConfig.load(env={"REDIS_URL": "redis+sentinel://s1:26379"})


def test_min_replicas_acked_waits_for_replicas(redis_sentinel, sentinel_url: str, reg: Registry):
    """WAIT after the enqueue, on its own connection: with the one replica there, the enqueue
    returns once the replica has the job; asking for two, it fails after replica_ack_timeout
    with NotReplicated, and the job is queued all the same (same id on a retry by key)."""

    @task(name="noop", registry=reg)
    def noop() -> None:
        return None

    one = TaskQueue(RedisSettings(sentinel_url, min_replicas_acked=1), registry=reg)
    job_id = one.enqueue(noop)
    replica = next(n for n in redis_sentinel.servers if n is not redis_sentinel.primary())
    with replica.client() as c:
        assert c.hget(f"tq:{{default}}:job:{job_id}", "state") == b"queued"  # already there
    assert len(one.enqueue_many([(noop, (), {})] * 3)) == 3
    two = TaskQueue(
        RedisSettings(sentinel_url, min_replicas_acked=2, replica_ack_timeout=0.2), registry=reg
    )
    with pytest.raises(NotReplicated, match=r"reached 1 of 2 replica\(s\) in 0.2s") as err:
        two.enqueue_with(noop, key="once")
    (first,) = err.value.job_ids
    assert one.status(first).state == "queued"
    assert one.enqueue_with(noop, key="once") == first  # the retry by key finds it
    one.close()
    two.close()


def test_a_retry_by_key_is_acknowledged_only_once_the_first_write_is_replicated(
    redis_sentinel, sentinel_url: str, reg: Registry
) -> None:
    """The retry that finds the existing job would write nothing new, and from Redis 7.2 WAIT
    counts replicas against the connection's last write (7.0 moves that mark on any command):
    on a connection opened before the first write (another process, another pool) it would
    say "replicated" at once. The retry renews the key, so WAIT covers the first write: while
    the replica is stopped, the retry is NotReplicated too. (CI's Redis 7.0 passes this with
    or without the renewal; a 7.2 or newer server is needed to see it fail without.)"""

    @task(name="noop", registry=reg)
    def noop() -> None:
        return None

    replica = next(n for n in redis_sentinel.servers if n is not redis_sentinel.primary())
    settings = RedisSettings(sentinel_url, min_replicas_acked=1, replica_ack_timeout=0.2)
    first_client, retry_client = (
        TaskQueue(settings, registry=reg),
        TaskQueue(settings, registry=reg),
    )
    retry_client.redis.ping()  # its connection is open before the first write
    assert replica.proc is not None
    replica.proc.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(NotReplicated) as err:
            first_client.enqueue_with(noop, key="acked-once")
        (job_id,) = err.value.job_ids
        with pytest.raises(NotReplicated) as again:
            retry_client.enqueue_with(noop, key="acked-once")
        assert again.value.job_ids == [job_id]
    finally:
        replica.proc.send_signal(signal.SIGCONT)
    assert retry_client.enqueue_with(noop, key="acked-once") == job_id  # now on the replica
    with replica.client() as c:
        assert c.hget(f"tq:{{default}}:job:{job_id}", "state") == b"queued"
    first_client.close()
    retry_client.close()
