"""A real Sentinel set on loopback ports, for tests: one primary, one replica, three Sentinels
(quorum 2), all from the redis-server binary (Sentinel is ``redis-server <conf> --sentinel``).

    with LocalSentinel() as s:
        tq = TaskQueue(s.url)                    # redis+sentinel://127.0.0.1:s1,.../mymaster
        s.kill_primary()                         # SIGKILL it; the Sentinels promote the replica

``LocalSentinel(auth=SentinelAuth())`` protects everything with passwords: the servers'
``requirepass`` (also the replica's ``masterauth`` and the Sentinels' ``auth-pass``) plus an ACL
user for the application, and the Sentinels' own ``requirepass`` plus an ACL user on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .server import RedisServer, poll_until

SERVICE = "mymaster"


@dataclass(frozen=True)
class SentinelAuth:
    """The credentials of an authenticated Sentinel set (test values, not secrets)."""

    #: The servers' requirepass (default user); the replica and the Sentinels use it too.
    password: str = "server-secret"
    #: An ACL user on the servers for the application.
    user: str = "app"
    user_password: str = "app-secret"
    #: The Sentinels' own requirepass, and an ACL user on them.
    sentinel_password: str = "sentinel-secret"
    sentinel_user: str = "watcher"
    sentinel_user_password: str = "watcher-secret"

    def server_args(self) -> list[str]:
        return [
            "--requirepass", self.password, "--masterauth", self.password,
            "--user", self.user, "on", f">{self.user_password}", "~*", "&*", "+@all",
        ]  # fmt: skip

    def sentinel_conf(self) -> str:
        return (
            f"requirepass {self.sentinel_password}\n"
            f"user {self.sentinel_user} on >{self.sentinel_user_password} +@all\n"
            f"sentinel auth-pass {SERVICE} {self.password}\n"
            f"sentinel sentinel-pass {self.sentinel_password}\n"
        )


class SentinelServer(RedisServer):
    """One Sentinel process watching ``primary`` as service ``SERVICE``."""

    logname = "sentinel.log"

    def __init__(self, primary_port: int, *, down_after_ms: int, failover_timeout_ms: int,
                 binary: str | None = None, auth: SentinelAuth | None = None) -> None:  # fmt: skip
        super().__init__(binary=binary, password=auth.sentinel_password if auth else None)
        self.conf = Path(self.dir) / "sentinel.conf"
        self.conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\nlogfile {self.logname}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {down_after_ms}\n"
            f"sentinel failover-timeout {SERVICE} {failover_timeout_ms}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n" + (auth.sentinel_conf() if auth else "")
        )

    def command(self) -> list[str]:
        return [self.binary, str(self.conf), "--sentinel"]


class LocalSentinel:
    """A primary, a replica and ``sentinels`` Sentinels with quorum 2."""

    def __init__(
        self,
        sentinels: int = 3,
        *,
        down_after_ms: int = 2000,
        failover_timeout_ms: int = 10_000,
        binary: str | None = None,
        auth: SentinelAuth | None = None,
    ) -> None:
        self.service = SERVICE
        self.auth = auth
        self.server_args = auth.server_args() if auth else []
        password = auth.password if auth else None
        self.servers = [RedisServer(binary=binary, args=self.server_args, password=password)
                        for _ in range(2)]  # fmt: skip
        self.sentinels = [
            SentinelServer(self.servers[0].port, down_after_ms=down_after_ms,
                           failover_timeout_ms=failover_timeout_ms, binary=binary, auth=auth)
            for _ in range(sentinels)
        ]  # fmt: skip

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(s.address for s in self.sentinels) + f"/{SERVICE}"

    def start(self, timeout: float = 60.0) -> LocalSentinel:
        primary, replica = self.servers
        primary.start()
        replica.args = [*self.server_args, "--replicaof", "127.0.0.1", str(primary.port)]
        replica.start()
        self._wait_replica_synced(timeout)
        for s in self.sentinels:
            s.start()
        self.wait_ready(timeout)
        return self

    def _wait_replica_synced(self, timeout: float) -> None:
        def synced() -> bool:
            for n in self.servers:
                if n.alive:
                    with n.client() as c:
                        repl = c.info("replication")
                    if repl["role"] == "slave" and repl.get("master_link_status") != "up":
                        return False
            return True

        poll_until(synced, timeout, "the replica to sync")

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Every Sentinel sees the same live primary, one replica and the other Sentinels."""
        others = len(self.sentinels) - 1

        def ready() -> bool:
            addresses = set()
            for s in self.sentinels:
                with s.client() as c:
                    info = c.sentinel_master(SERVICE)
                if info["num-other-sentinels"] < others or info["num-slaves"] < 1:
                    return False
                if info["is_sdown"] or info["is_odown"]:
                    return False
                addresses.add((info["ip"], int(info["port"])))
            if len(addresses) != 1:
                return False
            port = addresses.pop()[1]
            server = next((n for n in self.servers if n.port == port and n.alive), None)
            if server is None:
                return False
            with server.client() as c:
                return c.info("replication")["role"] == "master"

        poll_until(ready, timeout, "the Sentinels to agree on a live primary")

    def primary(self) -> RedisServer:
        """The server the Sentinels name as primary now."""
        with self.sentinels[0].client() as c:
            _host, port = c.sentinel_get_master_addr_by_name(SERVICE)
        return next(n for n in self.servers if n.port == int(port))

    def kill_primary(self, timeout: float = 60.0) -> RedisServer:
        """SIGKILL the primary, wait until the Sentinels have promoted the replica; returns the
        killed server (``start()`` brings it back, and the Sentinels make it a replica)."""
        victim = self.primary()
        victim.kill()
        poll_until(lambda: self.primary() is not victim, timeout, "the Sentinels to fail over")
        new = self.primary()
        poll_until(lambda: new.client().info("replication")["role"] == "master", timeout,
              "the new primary to accept writes")  # fmt: skip
        return victim

    def heal(self, timeout: float = 60.0) -> None:
        """Restart any killed server (it rejoins as a replica) and wait until all is in sync.

        A restarted server has no persistence here: it comes back empty, and Sentinel counts a
        replica that has never reached its primary as a candidate. A stall of the primary
        while it resyncs (a loaded machine) would then promote the empty node and wipe the
        data set. So it restarts with ``replica-priority 0`` (never promoted), and gets its
        priority back once it is in sync and every Sentinel has seen that."""
        primary = self.primary()
        restarted = [n for n in self.servers if not n.alive]
        for n in restarted:
            n.args = [*self.server_args, "--replicaof", "127.0.0.1", str(primary.port),
                      "--replica-priority", "0"]  # fmt: skip
            n.start()
        self.wait_ready(timeout)
        self._wait_replica_synced(timeout)
        for n in restarted:
            with n.client() as c:
                c.config_set("replica-priority", 100)
            poll_until(lambda n=n: self._priority_seen(n, 100), timeout,
                       "every Sentinel to see the resynced replica's priority")  # fmt: skip

    def _priority_seen(self, server: RedisServer, priority: int) -> bool:
        for s in self.sentinels:
            with s.client() as c:
                replicas = c.sentinel_slaves(SERVICE)
            mine = [r for r in replicas if int(r["port"]) == server.port]
            if not mine or int(mine[0].get("slave-priority", -1)) != priority:
                return False
        return True

    def switches(self) -> int:
        """How many times the first Sentinel has switched the service to a new primary (its
        log's ``+switch-master`` events since the set started)."""
        log = Path(self.sentinels[0].dir) / SentinelServer.logname
        return log.read_text(errors="replace").count("+switch-master") if log.exists() else 0

    def flush(self) -> None:
        with self.primary().client() as c:
            c.flushall()
            c.script_flush()

    def close(self) -> None:
        for n in [*self.sentinels, *self.servers]:
            n.close()

    def __enter__(self) -> LocalSentinel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
