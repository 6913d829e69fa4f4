"""The cluster clients keep to the [redis] settings: ``pool_size`` bounds the asyncio cluster's
connections (callers beyond it wait), and ``min_replicas_acked`` works on a cluster for the
sync and the asyncio client (WAIT on the connection, and so the node, that took the write),
through a SCRIPT FLUSH and a slot move."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
from conftest import running_worker

from taskqueue import AsyncTaskQueue, TaskQueue, task
from taskqueue.connection import RedisSettings, connect, connect_async
from taskqueue.errors import NotReplicated
from taskqueue.registry import Registry
from taskqueue.testing import RedisServer, wait_for
from taskqueue.testing.cluster import LocalCluster
from taskqueue.worker import Worker

NS = "tq:{default}:"


def named(node: RedisServer, name: str) -> set[int]:
    """Ids of the connections on ``node`` named ``tq:<name>:<this pid>`` that carry commands:
    not the one redis-py keeps on a seed node of the URL to read the slot map (CLUSTER SLOTS)."""
    me = f"tq:{name}:{os.getpid()}"
    with node.client() as c:
        return {
            int(x["id"])
            for x in c.client_list()
            if x.get("name") == me and x["cmd"] != "cluster|slots"
        }


class Peak:
    """The most connections named ``name`` seen on any node, sampled from a thread while the
    block runs (the event loop under test stays free). A connection counts once it is seen in
    two samples in a row (20 ms apart), so a connection listed for a moment only is not
    counted: two full CI runs on 2026-11-29 saw 3 on one node where the pool holds 2, never
    seen in 16 runs of the file alone (4 beside two CPU hogs); our unconfirmed reading is a
    just-closed connection still listed beside its replacement on a loaded Redis. Connections
    of that name already open when the block starts are not counted either."""

    def __init__(self, cluster: LocalCluster, name: str) -> None:
        self.cluster, self.name, self.value = cluster, name, 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.before = {n.port: named(n, name) for n in cluster.nodes if n.alive}

    def _sample(self) -> None:
        last: dict[int, set[int]] = {}
        while not self.done.wait(0.02):
            for n in self.cluster.nodes:
                if n.alive:
                    now = named(n, self.name) - self.before.get(n.port, set())
                    self.value = max(self.value, len(now & last.get(n.port, set())))
                    last[n.port] = now

    def __enter__(self) -> Peak:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(10)


def test_pool_size_bounds_the_cluster_clients(redis_cluster: LocalCluster, cluster_url):
    """8 blocking waits on one slot through a pool of 2, sync (threads) and asyncio: they take
    turns, none fails."""
    settings = RedisSettings(cluster_url, pool_size=2)

    async def asyncio_waits() -> list:
        client = connect_async(settings, name="abounded")
        try:
            waits = [client.blpop([f"{NS}nothing"], timeout=0.3) for _ in range(8)]
            return await asyncio.gather(*waits, return_exceptions=True)
        finally:
            await client.aclose()

    with Peak(redis_cluster, "abounded") as peak:
        results = asyncio.run(asyncio_waits())
    assert results == [None] * 8  # every caller waited for a place: no MaxConnectionsError
    assert peak.value == 2

    client = connect(settings, name="bounded")
    done: list[None] = []
    threads = [threading.Thread(target=lambda: done.append(client.blpop([f"{NS}nothing"], 0.3)))
               for _ in range(8)]  # fmt: skip
    with Peak(redis_cluster, "bounded") as peak:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert done == [None] * 8
    assert peak.value == 2
    client.close()


def test_pool_size_bounds_a_worker_on_the_cluster(redis_cluster: LocalCluster, cluster_url,
                                                  reg: Registry):  # fmt: skip
    @task(name="nap", registry=reg)
    async def nap() -> None:
        await asyncio.sleep(0.02)

    tq = TaskQueue(RedisSettings(cluster_url, pool_size=2), registry=reg)
    ids = tq.enqueue_many([(nap, (), {})] * 60)
    worker = Worker(tq, max_concurrent_tasks=20, registry=reg)
    thread = threading.Thread(target=worker.run, daemon=True)
    with Peak(redis_cluster, "worker") as peak:
        thread.start()
        try:
            wait_for(lambda: tq.status(ids[-1]).state == "succeeded", 60, "the jobs")
            wait_for(lambda: all(tq.status(i).state == "succeeded" for i in ids), 60, "all jobs")
        finally:
            worker.stop()
            thread.join(30)
    assert 1 <= peak.value <= 2
    tq.close()


def replica_has(cluster: LocalCluster, job_id: str) -> bool:
    """Whether a replica of the namespace's primary holds the job record already."""
    primary = cluster.primary_of(NS)
    for n in cluster.nodes:
        if n.alive and n is not primary:
            with n.client() as c:
                repl = c.info("replication")
                if repl["role"] == "slave" and int(repl["master_port"]) == primary.port:
                    c.execute_command("READONLY")
                    return c.exists(f"{NS}job:{job_id}") == 1
    raise AssertionError("the namespace's primary has no replica")


def test_min_replicas_acked_on_the_cluster(redis_cluster: LocalCluster, cluster_url, reg):
    """Sync and asyncio: acknowledged enqueues are on the slot owner's replica when they
    return; asking for 2 replicas (there is 1) raises NotReplicated, the job queued all the
    same; a SCRIPT FLUSH and a slot move in between change nothing."""

    @task(name="noop", registry=reg)
    def noop() -> None:
        return None

    one = RedisSettings(cluster_url, min_replicas_acked=1)
    two = RedisSettings(cluster_url, min_replicas_acked=2, replica_ack_timeout=0.2)
    tq = TaskQueue(one, registry=reg)

    async def async_enqueues() -> tuple[str, str]:
        atq, atq2 = AsyncTaskQueue(one, registry=reg), AsyncTaskQueue(two, registry=reg)
        try:
            first = await atq.enqueue(noop)
            assert replica_has(redis_cluster, first)
            for n in redis_cluster.nodes:  # the node forgets the scripts: NOSCRIPT, reload
                with n.client() as c:
                    c.script_flush()
            second = await atq.enqueue(noop)
            with pytest.raises(NotReplicated, match=r"reached 1 of 2 replica\(s\)") as err:
                await atq2.enqueue_with(noop, key="async-once")
            assert await atq.enqueue_with(noop, key="async-once") == err.value.job_ids[0]
            return first, second
        finally:
            await atq.close()
            await atq2.close()

    job = tq.enqueue(noop)
    assert replica_has(redis_cluster, job)
    assert len(tq.enqueue_many([(noop, (), {})] * 3)) == 3
    with pytest.raises(NotReplicated, match=r"reached 1 of 2 replica\(s\) in 0.2s") as err:
        TaskQueue(two, registry=reg).enqueue_with(noop, key="once")
    assert tq.status(err.value.job_ids[0]).state == "queued"
    for job_id in asyncio.run(async_enqueues()):
        assert replica_has(redis_cluster, job_id)

    redis_cluster.move_slot(NS)  # the clients' slot maps are stale: MOVED, refresh, again
    job = tq.enqueue(noop)
    assert replica_has(redis_cluster, job)
    for job_id in asyncio.run(async_enqueues()):
        assert replica_has(redis_cluster, job_id)
    tq.close()


def test_server_credentials_reach_every_cluster_node(reg: Registry):
    """A cluster whose nodes require a password: redis.password (or the URL's) reaches the
    sync and the asyncio client's connections to every node, and the worker's."""

    @task(name="mul", registry=reg)
    async def mul(a: int, b: int) -> int:
        return a * b

    with LocalCluster(3, 0, password="cluster-pw") as cluster:
        url_with = cluster.url.replace("://", "://:cluster-pw@", 1)
        for settings in (
            RedisSettings(cluster.url, password="cluster-pw"),
            RedisSettings(url_with),
        ):
            tq = TaskQueue(settings, registry=reg)
            ids = [tq.enqueue(mul, i, 2) for i in range(6)]

            async def from_asyncio(settings: RedisSettings = settings) -> str:
                atq = AsyncTaskQueue(settings, namespace="other", registry=reg)
                try:
                    return await atq.enqueue(mul, 3, 3)
                finally:
                    await atq.close()

            other = asyncio.run(from_asyncio())
            with running_worker(tq, reg, queues=["default"]):
                assert [tq.result(i, timeout=30) for i in ids] == [2 * i for i in range(6)]
            assert (
                TaskQueue(settings, namespace="other", registry=reg).status(other).state == "queued"
            )
            tq.close()


def test_tqctl_finds_masters_of_other_namespaces_on_every_shard(cluster_url) -> None:
    """SCAN is per node: the hint "a master runs in namespace X" must look at every primary."""
    import time

    from taskqueue.control.client import ControlClient
    from taskqueue.keys import Keys

    r = connect(RedisSettings(cluster_url))
    names = [f"ns{i}" for i in range(12)]  # a dozen hash tags land on all three shards
    for ns in names:
        r.zadd(Keys(namespace=ns).masters, {f"h:{ns}": int(time.time() * 1000)})
    assert len({r.get_node_from_key(Keys(namespace=ns).masters).name for ns in names}) > 1
    found = ControlClient(r, Keys()).other_namespaces()
    assert sorted(ns for _, ns, _ in found) == sorted(names)
    r.close()
