"""Run ``broker.Call`` objects on a redis-py connection, sync or asyncio.

A single call sends EVALSHA itself on a connection taken from the client's pool (``direct``: not
through ``execute_command``, whose retry, observability and callback layers cost a third of a
single enqueue's client time; a connection error drops the connection and is raised, as
redis-py does with the no-retry policy our pools set) and, on NOSCRIPT (a restarted Redis,
SCRIPT FLUSH), loads the script and sends it again. The runner keeps that connection between
its calls (``Spare``, ``AsyncSpare``) and gives it back to the pool for any other taker. Cluster
clients, and a pool whose connections retry, go through ``execute_command``. Pipelines use redis-py
``Script`` objects registered once per client, which load missing scripts before they run.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import redis
import redis.asyncio

from .broker import Call
from .cluster_bound import on_slot_owner
from .connection import AsyncSparePool, SparePool, is_cluster
from .scripts import Registered, sha, source

#: Replies that mean the slot lives elsewhere now.
MOVED = (redis.exceptions.MovedError, redis.exceptions.AskError, redis.exceptions.TryAgainError)


#: No reply yet: the call goes through the client.
SLOW = object()


def direct_pool(client: Any) -> Any:
    """The pool whose connections a single call may use itself, or None (use the client)."""
    if is_cluster(client) or getattr(client, "connection", None) is not None:
        return None
    return getattr(client, "connection_pool", None)


def _take(pool: Any) -> Any:
    try:
        return pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants a command name
        return pool.get_connection("EVALSHA")


async def _take_async(pool: Any) -> Any:
    try:
        return await pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants a command name
        return await pool.get_connection("EVALSHA")


class _SpareBook:
    """What both spares keep track of, and the two decisions they share. The sync ``Spare``
    holds its lock around each step; the asyncio one needs none (one event loop)."""

    def __init__(self, pool: Any, spare_pool: type) -> None:
        self.pool = pool
        self.keep = isinstance(pool, spare_pool)
        self.conn: Any = None
        self.wanted = False  # another taker came while the spare was in use: give it back
        self.out = 0  # connections taken for calls and not given back yet
        if self.keep:
            pool.spare = self

    def _kept(self, conn: Any) -> bool:
        """``conn`` answered in full: keep it as the spare (True), unless another taker asked
        meanwhile or a spare is kept already (then it goes back to the pool)."""
        self.out -= 1
        keep = self.conn is None and not self.wanted
        self.wanted = self.wanted and self.out > 0
        if keep:
            self.conn = conn
        return keep

    def _reclaimed(self) -> Any:
        """Another taker wants a connection: the idle spare, to give back to the pool (None
        when it is in use: it goes back when its call ends)."""
        conn, self.conn = self.conn, None
        if conn is None and self.out:
            self.wanted = True
        return conn


class Spare(_SpareBook):
    """The pooled connection a sync runner keeps between its single calls. Taking a connection
    from redis-py's pool and giving it back costs more client time than writing the call: a
    pid check on each (a system call), a poll of the socket, metrics records and a locked
    queue (``bench/enqueue_interleaved.py``: ``taskqueue-floor`` is the call with no client
    work). Only on a ``SparePool`` (``connection.connect``), which asks the spare back for
    any other taker: the spare never keeps a caller waiting for a connection. A call that finds
    the spare in use takes one from the pool. Not used in a forked child (it is the parent's
    socket); checked before each use as the pool checks its own (a spare that Redis closed
    meanwhile, or that holds bytes nobody asked for, is replaced)."""

    def __init__(self, pool: Any) -> None:
        super().__init__(pool, SparePool)
        self.pid = os.getpid()
        self.lock = threading.Lock()

    def take(self) -> Any:
        """A connection for one call: the spare when it is free and fit, else the pool's."""
        if not self.keep:
            return _take(self.pool)
        with self.lock:
            conn, self.conn = self.conn, None
            self.out += 1
        try:
            return self._fit(conn)
        except BaseException:
            with self.lock:
                self.out -= 1
            raise

    def _fit(self, conn: Any) -> Any:
        """``conn`` (the spare, or None) if it may be used, else a connection from the pool."""
        if conn is not None and self.pid != os.getpid():
            self.pid = os.getpid()  # forked: the parent's connection, never used here
        elif conn is not None:
            try:
                fit = not conn.can_read()  # reconnects one that was disconnect()ed
            except Exception:  # noqa: BLE001 - closed by Redis (redis-py 8 raises), or down
                fit = False  # the pool's connection below reconnects, or raises
            except BaseException:
                conn.disconnect()
                self.pool.release(conn)
                raise
            if fit:
                return conn
            conn.disconnect()  # closed by Redis, or holding bytes nobody asked for
            self.pool.release(conn)
        return self.pool.get_connection_for_spare()

    def give_back(self, conn: Any) -> None:
        """``conn`` answered in full: the spare now, or back to the pool (``_kept``)."""
        if self.keep:
            with self.lock:
                if self._kept(conn):
                    return
        self.pool.release(conn)

    def drop(self, conn: Any) -> None:
        """``conn`` failed mid-call: close it and return it to the pool."""
        if self.keep:
            with self.lock:
                self.out -= 1
        conn.disconnect()
        self.pool.release(conn)

    def stop(self) -> None:
        """Keep no spare from now on (the runner stopped writing calls itself)."""
        self.keep = False
        if isinstance(self.pool, SparePool):
            self.pool.spare = None
        self.lend()

    def lend(self) -> None:
        """Another taker wants a connection (called by the pool): ``_reclaimed``."""
        with self.lock:
            conn = self._reclaimed()
        if conn is not None:
            self.pool.release(conn)


class AsyncSpare(_SpareBook):
    """``Spare`` for an asyncio runner, on an ``AsyncSparePool``: the connection it keeps
    between its single calls, given back to the pool for any other taker (at once when idle,
    else when its call ends). Used from one event loop, so no lock: nothing here awaits between
    reading and writing its fields. Checked before each use as the pool checks its own."""

    def __init__(self, pool: Any) -> None:
        super().__init__(pool, AsyncSparePool)

    async def take(self) -> Any:
        """A connection for one call: the spare when it is free and fit, else the pool's."""
        if not self.keep:
            return await _take_async(self.pool)
        conn, self.conn = self.conn, None
        self.out += 1
        try:
            if conn is not None:
                try:
                    fit = await _fit_async(conn)
                except BaseException:  # cancelled: the spare goes back to the pool
                    await self.pool.release(conn)
                    raise
                if fit:
                    return conn
                try:
                    await conn.disconnect()  # closed by Redis, or holding bytes nobody asked for
                finally:
                    await self.pool.release(conn)
            return await self.pool.get_connection_for_spare()
        except BaseException:
            self.out -= 1
            raise

    async def give_back(self, conn: Any) -> None:
        """``conn`` answered in full: the spare now, or back to the pool (``_kept``)."""
        if not (self.keep and self._kept(conn)):
            await self.pool.release(conn)

    async def drop(self, conn: Any) -> None:
        """``conn`` failed or was cancelled mid-call: close it and return it to the pool."""
        if self.keep:
            self.out -= 1
        try:
            await conn.disconnect()
        finally:
            await self.pool.release(conn)

    async def stop(self) -> None:
        """Keep no spare from now on (the runner stopped writing calls itself)."""
        self.keep = False
        if isinstance(self.pool, AsyncSparePool):
            self.pool.spare = None
        await self.lend()

    async def lend(self) -> None:
        """Another taker wants a connection (called by the pool): ``_reclaimed``."""
        conn = self._reclaimed()
        if conn is not None:
            await self.pool.release(conn)


async def _fit_async(conn: Any) -> bool:
    """Whether a kept asyncio connection may carry the next call: still connected, at no end
    of stream and holding no unread bytes (what the pool checks before handing one out)."""
    try:
        return bool(conn.is_connected) and not await conn.can_read()
    except Exception:  # noqa: BLE001 - closed: the pool's connection replaces it
        return False


def wait_then(keys: list[str], timeout: float, call: Call) -> list[tuple[Any, ...]]:
    """The idle wait's two commands, sent together: BLPOP ``keys``, then ``call``'s EVALSHA."""
    return [
        ("BLPOP", *keys, timeout),
        ("EVALSHA", sha(call.script), len(call.keys), *call.keys, *call.args),
    ]


def retries(conn: Any) -> bool:
    """True if ``conn`` retries failed commands: then calls go through the client, which
    knows how."""
    retry = getattr(conn, "retry", None)
    return retry is not None and retry.get_retries() > 0


class SyncRunner:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.scripts = Registered(client)
        self.pool = direct_pool(client)
        self.checked = False  # whether the pool's connections retry (then: not direct)
        self.spare = Spare(self.pool)

    def __call__(self, call: Call) -> Any:
        keys, name, pool = call.keys, call.script, self.pool
        if pool is not None:
            raw = SLOW
            conn = self.spare.take()
            try:
                if not self.checked:
                    self.checked = True
                    self.pool = None if retries(conn) else pool
                    if self.pool is None:
                        self.spare.stop()
                if self.pool is not None:
                    if call.packed is not None:
                        conn.send_packed_command((call.packed,))
                    else:
                        conn.send_command("EVALSHA", sha(name), len(keys), *keys, *call.args)
                    raw = conn.read_response()
            except redis.exceptions.ResponseError as exc:  # the whole reply was read
                self.spare.give_back(conn)
                if not isinstance(exc, redis.exceptions.NoScriptError):
                    raise
                # NOSCRIPT: loaded below, through the client
            except BaseException:
                self.spare.drop(conn)  # a reply may still be on its way, for nobody
                raise
            else:
                self.spare.give_back(conn)
            if raw is not SLOW:
                return call.parse(raw)
        try:
            raw = self.client.execute_command("EVALSHA", sha(name), len(keys), *keys, *call.args)
        except redis.exceptions.NoScriptError:
            self.client.script_load(source(name))
            raw = self.client.execute_command("EVALSHA", sha(name), len(keys), *keys, *call.args)
        return call.parse(raw)

    def after_wait(
        self, keys: list[str], timeout: float, call: Call, on_conn: Any = None
    ) -> tuple[Any, Any]:
        """``AsyncRunner.after_wait`` on a sync connection, for a thread that waits itself.
        ``on_conn(conn)`` is called with the connection before the wait (None after it), so
        that another thread can drop it if Redis never answers."""
        pool = self.client.connection_pool
        conn = _take(pool)
        settled, noscript = False, False
        try:
            if on_conn is not None:
                on_conn(conn)
            conn.send_packed_command(conn.pack_commands(wait_then(keys, timeout, call)))
            limit = timeout + conn.socket_timeout if conn.socket_timeout else None
            popped = conn.read_response(timeout=limit)
            try:
                raw = conn.read_response()
            except redis.exceptions.NoScriptError:
                noscript = True
            settled = True
        finally:
            if on_conn is not None:
                on_conn(None)
            if not settled:
                conn.disconnect()
            pool.release(conn)
        if noscript:
            return popped, self(call)
        return popped, call.parse(raw)

    def pipeline(self, calls: list[Call]) -> list[Any]:
        """Run several calls in one round trip (each still atomic on its own). redis-py's
        cluster pipelines refuse EVALSHA: on a cluster the calls go one by one."""
        if is_cluster(self.client):
            return [self(call) for call in calls]
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            self.scripts[call.script](keys=call.keys, args=call.args, client=pipe)
        return [call.parse(raw) for call, raw in zip(calls, pipe.execute(), strict=True)]

    def acked(self, call: Call, replicas: int, timeout: float) -> tuple[Any, int]:
        """Run ``call``, then ``WAIT replicas timeout`` on the same connection (WAIT counts the
        replicas that have every write of its own connection); returns (reply, replicas that
        acknowledged). On a cluster both go to the node that owns the call's slot."""
        client = self.client
        for attempt in (1, 2):
            if is_cluster(self.client):
                client = self.client.get_node_from_key(call.keys[0]).redis_connection
            pipe = client.pipeline(transaction=False)
            self.scripts[call.script](keys=call.keys, args=call.args, client=pipe)
            pipe.execute_command("WAIT", replicas, int(timeout * 1000))
            try:
                raw, acked = pipe.execute()
            except (redis.exceptions.MovedError, redis.exceptions.ConnectionError):
                if attempt == 2 or not is_cluster(self.client):
                    raise
                self.client.nodes_manager.initialize()  # the slot moved or its primary failed
                continue
            return call.parse(raw), int(acked)
        raise AssertionError("unreachable")


class AsyncRunner:
    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self.scripts = Registered(client)
        self.pool = direct_pool(client)
        self.checked = False  # whether the pool's connections retry (then: not direct)
        self.spare = AsyncSpare(self.pool)

    async def __call__(self, call: Call) -> Any:
        keys, name, client, pool = call.keys, call.script, self.client, self.pool
        if pool is not None:
            raw = SLOW
            spare = self.spare
            conn = await spare.take()
            try:
                if not self.checked:
                    self.checked = True
                    self.pool = None if retries(conn) else pool
                    if self.pool is None:
                        await spare.stop()
                if self.pool is not None:
                    if call.packed is not None:
                        await conn.send_packed_command((call.packed,))
                    else:
                        await conn.send_command("EVALSHA", sha(name), len(keys), *keys,
                                                *call.args)  # fmt: skip
                    raw = await conn.read_response()
            except redis.exceptions.ResponseError as exc:  # the whole reply was read
                await spare.give_back(conn)
                if not isinstance(exc, redis.exceptions.NoScriptError):
                    raise
                # NOSCRIPT: loaded below, through the client
            except BaseException:  # a cancel too: a reply may still be on its way
                await spare.drop(conn)
                raise
            else:
                await spare.give_back(conn)
            if raw is not SLOW:
                return call.parse(raw)
        try:
            raw = await client.execute_command("EVALSHA", sha(name), len(keys), *keys, *call.args)
        except redis.exceptions.NoScriptError:
            await client.script_load(source(name))
            raw = await client.execute_command("EVALSHA", sha(name), len(keys), *keys, *call.args)
        return call.parse(raw)

    async def after_wait(self, keys: list[str], timeout: float, call: Call) -> tuple[Any, Any]:
        """BLPOP ``keys`` for up to ``timeout`` s with ``call`` sent right behind it on the same
        connection: Redis runs the call the moment the wait ends, a round trip sooner than a
        wait and then a call. Returns (the BLPOP reply, the call's parsed reply). Cancelled,
        it drops the connection (its replies are unknown). Not on a cluster (redis-py's
        cluster client routes command by command)."""
        pool = self.client.connection_pool
        conn = await _take_async(pool)
        settled, noscript = False, False
        try:
            await conn.send_packed_command(conn.pack_commands(wait_then(keys, timeout, call)))
            # As _AsyncBlockAware reads a lone BLPOP: the block plus the command timeout.
            limit = timeout + conn.socket_timeout if conn.socket_timeout else None
            popped = await conn.read_response(timeout=limit)
            try:
                raw = await conn.read_response()
            except redis.exceptions.NoScriptError:
                noscript = True
            settled = True
        finally:
            if not settled:
                await conn.disconnect()
            await pool.release(conn)
        if noscript:  # a restarted or flushed Redis: load the script and run the call again
            return popped, await self(call)
        return popped, call.parse(raw)

    async def acked(self, call: Call, replicas: int, timeout: float) -> tuple[Any, int]:
        """``SyncRunner.acked`` for asyncio."""
        if is_cluster(self.client):
            return await self._acked_on_cluster(call, replicas, timeout)
        pipe = self.client.pipeline(transaction=False)
        await self.scripts[call.script](keys=call.keys, args=call.args, client=pipe)
        pipe.execute_command("WAIT", replicas, int(timeout * 1000))
        raw, acked = await pipe.execute()
        return call.parse(raw), int(acked)

    async def _acked_on_cluster(self, call: Call, replicas: int, timeout: float) -> tuple[Any, int]:
        """EVALSHA then WAIT on one connection of the node that owns the call's slot. A slot
        that moved, a primary that failed or a node without the script: refresh (the slot map,
        or the script on that node) and send the pair again, at most twice."""
        key = call.keys[0]
        evalsha = ("EVALSHA", sha(call.script), len(call.keys), *call.keys, *call.args)
        wait = ("WAIT", replicas, int(timeout * 1000))
        for attempt in (1, 2, 3):
            try:
                raw, acked = await on_slot_owner(self.client, key, evalsha, wait)
            except redis.exceptions.ConnectionError:
                if attempt == 3:
                    raise
                await self.client.nodes_manager.initialize()  # its primary failed
                continue
            if isinstance(raw, redis.exceptions.NoScriptError) and attempt < 3:
                await on_slot_owner(self.client, key, ("SCRIPT", "LOAD", source(call.script)))
            elif isinstance(raw, MOVED) and attempt < 3:
                await self.client.nodes_manager.initialize()
            elif isinstance(raw, Exception):
                raise raw
            else:
                return call.parse(raw), int(acked)
        raise AssertionError("unreachable")
