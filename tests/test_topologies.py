"""The multi-node fixtures are what they claim: a real cluster with replicas, a real Sentinel set,
a real TLS server that wants client certificates."""

from __future__ import annotations

import redis
from redis.cluster import key_slot

from taskqueue.testing import RedisServer
from taskqueue.testing.cluster import SLOTS, LocalCluster
from taskqueue.testing.sentinel import LocalSentinel
from taskqueue.testing.tls import TlsFiles


def test_cluster_has_three_primaries_each_with_a_synced_replica(redis_cluster: LocalCluster):
    roles: dict[str, list[int]] = {"master": [], "slave": []}
    for node in redis_cluster.nodes:
        with node.client() as c:
            repl = c.info("replication")
            roles[repl["role"]].append(node.port)
            if repl["role"] == "slave":
                assert repl["master_link_status"] == "up"
            assert c.cluster("info")["cluster_state"] == "ok"
    assert len(roles["master"]) == 3 and len(roles["slave"]) == 3
    with redis_cluster.nodes[0].client() as c:
        ranges = c.execute_command("CLUSTER", "SLOTS")
    assert sum(hi - lo + 1 for lo, hi, *_ in ranges) == SLOTS
    assert {int(primary[1]) for _lo, _hi, primary, *_ in ranges} == set(roles["master"])
    assert all(len(replicas) == 1 for _lo, _hi, _p, *replicas in ranges)


def test_cluster_client_routes_keys_to_their_slot_owner(redis_cluster: LocalCluster, cluster_url):
    client = redis_cluster.client()
    owners = set()
    for ns in ("a", "b", "c", "d", "e", "f"):
        key = f"tq:{{{ns}}}:probe"
        client.set(key, ns)
        owner = redis_cluster.primary_of(key)
        owners.add(owner.port)
        with owner.client() as direct:
            assert direct.get(key) == ns.encode(), f"slot {key_slot(key.encode())}"
    assert len(owners) > 1
    client.close()


def test_sentinels_agree_on_a_primary_with_a_replica(redis_sentinel: LocalSentinel, sentinel_url):
    primary = redis_sentinel.primary()
    replica = next(n for n in redis_sentinel.servers if n is not primary)
    with replica.client() as c:
        assert c.info("replication")["master_port"] == primary.port
    for s in redis_sentinel.sentinels:
        with s.client() as c:
            state = c.sentinel_master(redis_sentinel.service)
        assert state["num-other-sentinels"] == 2 and state["quorum"] == 2
    assert sentinel_url.startswith("redis+sentinel://127.0.0.1:")


def test_tls_server_requires_a_client_certificate(tls_server: RedisServer, tls_certs: TlsFiles):
    assert tls_server.url.startswith("rediss://")
    with tls_server.client() as c:
        assert c.ping()
    bare = redis.Redis(port=tls_server.port, ssl=True, ssl_ca_certs=str(tls_certs.ca),
                       retry=None, socket_timeout=5)  # fmt: skip
    try:
        bare.ping()
    except redis.ConnectionError:
        pass
    else:
        raise AssertionError("a TLS client without a certificate was let in")
    plain = redis.Redis(port=tls_server.port, retry=None, socket_timeout=2)
    try:
        plain.ping()
    except redis.RedisError:
        pass
    else:
        raise AssertionError("a plain-text client was answered by the TLS port")
