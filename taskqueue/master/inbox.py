"""The master's control list, watched without polling Redis.

Duties:
1. Keep one ``BLPOP <control list> <BLOCK>`` outstanding on a connection borrowed from the
   master's pool (it counts towards ``redis.pool_size``) whose socket
   sits in the master's poll set, so a ``tqctl`` command wakes the loop at once while an idle
   master sends one command per ``BLOCK`` seconds instead of polling.
2. When the socket is readable, read the reply (a command, or nil on timeout) and re-arm.
3. On any connection trouble drop the connection; ``arm`` reconnects on a later tick (the
   master also polls the list slowly, so nothing waits on a broken inbox for long).
The master stays single-threaded: nothing here ever blocks on the network except the short
connect and the read of a reply that poll() said has arrived.
"""

from __future__ import annotations

import contextlib
import logging
import time

import redis
import redis.exceptions

from ..connection import is_cluster

log = logging.getLogger("taskqueue.master")
#: Seconds each BLPOP blocks in Redis before it is re-armed.
BLOCK = 20
RETRY_AFTER = 5.0


class Inbox:
    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client = client
        self.pool = None if is_cluster(client) else client.connection_pool
        self.key = key
        self.conn: redis.connection.AbstractConnection | None = None
        self.lender: redis.ConnectionPool | None = self.pool
        self.armed = False
        self.retry_at = 0.0

    def fileno(self) -> int | None:
        sock = getattr(self.conn, "_sock", None)
        return sock.fileno() if sock is not None and self.armed else None

    def arm(self) -> int | None:
        """Make sure a BLPOP is outstanding; returns the socket's fd to poll (None if down)."""
        if self.armed:
            return self.fileno()
        if time.monotonic() < self.retry_at:
            return None
        try:
            if self.conn is None:
                self.lender = self._node_pool()
                self.conn = self.lender.get_connection()
            self.conn.send_command("BLPOP", self.key, BLOCK)
            self.armed = True
        except (redis.exceptions.RedisError, OSError):
            self._drop()
            return None
        return self.fileno()

    def read(self) -> list[bytes]:
        """The socket is readable: return the command that arrived (if any) and re-arm."""
        if self.conn is None or not self.armed:
            return []
        self.armed = False
        try:
            reply = self.conn.read_response()
        except (redis.exceptions.RedisError, OSError) as exc:
            log.debug("control inbox connection lost: %s", exc)
            self._drop()
            return []
        return [reply[1]] if reply else []

    def _node_pool(self) -> redis.ConnectionPool:
        """The pool to borrow from: on Redis Cluster, that of the node owning the list's slot
        now (after a failover or a slot move, the map is refreshed when the old one fails)."""
        if self.pool is not None:
            return self.pool
        return self.client.get_node_from_key(self.key).redis_connection.connection_pool

    def _drop(self) -> None:
        self.armed = False
        self.retry_at = time.monotonic() + RETRY_AFTER
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.disconnect()
            with contextlib.suppress(Exception):
                self.lender.release(self.conn)
            self.conn = None
            if self.pool is None:  # cluster: the node may have failed over or lost the slot
                with contextlib.suppress(Exception):
                    self.client.nodes_manager.initialize()

    def close(self) -> None:
        """Give the connection back to the pool (disconnected: a BLPOP may still be pending)."""
        self._drop()
