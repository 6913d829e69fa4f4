"""A real Redis Cluster on loopback ports, for tests: primaries with replicas, made from the
redis-server binary with the CLUSTER commands (no redis-cli needed).

    with LocalCluster() as cluster:              # 3 primaries, 1 replica each
        tq = TaskQueue(cluster.url)              # redis+cluster://127.0.0.1:p1,127.0.0.1:p2,...
        cluster.kill_primary("tq:{default}:x")   # SIGKILL the owner; its replica takes over

Failover is Redis's own: a replica promotes itself ``node_timeout_ms`` after its primary stops
answering (plus an election of a few hundred ms).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from redis.cluster import ClusterNode, RedisCluster, key_slot

from .server import RedisServer, free_cluster_port, poll_until

if TYPE_CHECKING:
    from .tls import TlsFiles

SLOTS = 16384


class LocalCluster:
    """``primaries`` primaries owning equal slot ranges, each with ``replicas`` replicas."""

    def __init__(
        self,
        primaries: int = 3,
        replicas: int = 1,
        *,
        node_timeout_ms: int = 2000,
        tls: TlsFiles | None = None,
        binary: str | None = None,
        slots: list[list[int]] | None = None,
        password: str | None = None,
    ) -> None:
        """``slots`` gives each primary its own list of slots (default: equal ranges);
        ``password`` makes every node require it (``requirepass``, and ``masterauth``)."""
        self.primaries = primaries
        self.slots = slots or [
            list(range(i * SLOTS // primaries, (i + 1) * SLOTS // primaries))
            for i in range(primaries)
        ]
        self.replicas = replicas
        self.tls = tls
        args = [
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(node_timeout_ms),
            # A replica may always take over, however long it was cut off (tests kill nodes).
            "--cluster-replica-validity-factor", "0",
            "--appendonly", "no",
        ]  # fmt: skip
        if password:
            args += ["--requirepass", password, "--masterauth", password]
        self.password = password
        self.nodes = [
            RedisServer(
                port=free_cluster_port(), binary=binary, args=args, tls=tls, password=password
            )  # fmt: skip
            for _ in range(primaries * (1 + replicas))
        ]
        self.ids: dict[int, str] = {}

    # -- addresses ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``redis+cluster://`` (``rediss+cluster://`` with TLS) naming every node as a seed."""
        scheme = "rediss+cluster" if self.tls else "redis+cluster"
        return f"{scheme}://" + ",".join(n.address for n in self.nodes)

    def client(self, **kwargs: Any) -> RedisCluster:
        """A redis-py RedisCluster on the live nodes."""
        if self.tls:
            kwargs = {**self.tls.client_kwargs(), **kwargs}
        if self.password:
            kwargs.setdefault("password", self.password)
        seeds = [ClusterNode("127.0.0.1", n.port) for n in self.nodes if n.alive]
        return RedisCluster(startup_nodes=seeds, **kwargs)

    def node(self, port: int) -> RedisServer:
        return next(n for n in self.nodes if n.port == port)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> LocalCluster:
        for n in self.nodes:
            n.start()
        for n in self.nodes:
            with n.client() as c:
                self.ids[n.port] = c.execute_command("CLUSTER", "MYID").decode()
        primaries = self.nodes[: self.primaries]
        for i, n in enumerate(primaries):
            with n.client() as c:
                c.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
                c.execute_command("CLUSTER", "ADDSLOTS", *self.slots[i])
        first = self.nodes[0]
        for n in self.nodes[1:]:
            with n.client() as c:
                c.execute_command("CLUSTER", "MEET", "127.0.0.1", first.port)
        poll_until(self._all_known, timeout, "every node to know every other")
        for j, n in enumerate(self.nodes[self.primaries :]):
            primary = primaries[j % self.primaries]
            with n.client() as c:
                poll_until(lambda c=c, p=primary: c.execute_command("CLUSTER", "REPLICATE",
                                                               self.ids[p.port]),
                      timeout, "CLUSTER REPLICATE")  # fmt: skip
        self.wait_healthy(timeout)
        return self

    def _all_known(self) -> bool:
        for n in self.nodes:
            with n.client() as c:
                text = c.execute_command("CLUSTER", "NODES").decode()
            known = [line for line in text.splitlines() if line and "handshake" not in line]
            if len(known) != len(self.nodes):
                return False
        return True

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Wait until every live node says the cluster is ok, every slot has a live primary
        and every live replica is in sync with its primary."""

        def healthy() -> bool:
            live = [n for n in self.nodes if n.alive]
            replicas = 0
            for n in live:
                with n.client() as c:
                    repl = c.info("replication")
                if repl["role"] == "slave":
                    replicas += 1
                    if repl.get("master_link_status") != "up":
                        return False
            for n in live:
                with n.client() as c:
                    info = c.cluster("info")
                    if info.get("cluster_state") != "ok":
                        return False
                    if str(info.get("cluster_slots_ok")) != str(SLOTS):
                        return False
                    # Every node's view lists every live replica (gossip has caught up).
                    ranges = c.execute_command("CLUSTER", "SLOTS")
                listed = {int(replica[1]) for r in ranges for replica in r[3:]}
                if len(listed) != replicas:
                    return False
            return True

        poll_until(healthy, timeout, "a healthy cluster")

    def primary_of(self, key: str) -> RedisServer:
        """The live node that owns ``key``'s slot now."""
        slot = key_slot(key.encode())
        for n in self.nodes:
            if not n.alive:
                continue
            with n.client() as c:
                if c.info("replication")["role"] != "master":
                    continue
                for lo, hi, primary, *_ in c.execute_command("CLUSTER", "SLOTS"):
                    if lo <= slot <= hi and int(primary[1]) == n.port:
                        return n
        raise RuntimeError(f"no live primary owns slot {slot}")

    def kill_primary(self, key: str, timeout: float = 60.0) -> RedisServer:
        """SIGKILL the primary owning ``key``'s slot and wait until a replica has taken over
        and the cluster is ok again; returns the killed node (``start()`` brings it back as a
        replica)."""
        victim = self.primary_of(key)
        victim.kill()

        def promoted() -> bool:
            try:
                return self.primary_of(key) is not victim
            except RuntimeError:
                return False

        poll_until(promoted, timeout, f"a replica to take over from {victim.address}")
        self.wait_healthy(timeout)
        return victim

    def move_slot(self, key: str, timeout: float = 60.0) -> RedisServer:
        """Migrate ``key``'s slot, with its keys, to another primary (what a resharding does:
        IMPORTING/MIGRATING, MIGRATE in batches, SETSLOT NODE); returns the new owner."""
        slot = key_slot(key.encode())
        src = self.primary_of(key)
        dst = next(n for n in self.nodes if n.alive and n is not src and self._is_primary(n))
        src_id, dst_id = self.ids[src.port], self.ids[dst.port]
        with src.client() as s, dst.client() as d:
            d.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            while keys := s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                s.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *keys)
            for n in self.nodes:
                if n.alive and self._is_primary(n):
                    with n.client() as c:
                        c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        poll_until(lambda: self.primary_of(key) is dst, timeout, f"slot {slot} to move")
        self.wait_healthy(timeout)
        return dst

    @staticmethod
    def _is_primary(node: RedisServer) -> bool:
        with node.client() as c:
            return c.info("replication")["role"] == "master"

    def flush(self) -> None:
        """Empty every primary and drop its scripts."""
        for n in self.nodes:
            if not n.alive:
                continue
            with n.client() as c:
                if c.info("replication")["role"] == "master":
                    c.flushall()
                c.script_flush()

    def close(self) -> None:
        for n in self.nodes:
            n.close()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
