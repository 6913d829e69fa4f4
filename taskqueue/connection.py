"""The one place that opens Redis connections: sync and asyncio clients from a URL and ``[redis]``.

    settings = RedisSettings.from_config(cfg)          # or RedisSettings("redis://host:6379")
    client = connect(settings, name="client")          # redis.Redis
    aclient = connect_async(settings, name="worker")   # redis.asyncio.Redis

Duties:
1. ``RedisSettings``: the URL plus the ``[redis]`` connection settings, defaults from the schema.
2. ``pool_size`` bounds the connections one client opens: callers beyond it wait for a free
   connection (a blocking pool) instead of opening more. A process uses one client per role,
   so the bound holds per process (the master's control inbox borrows from the same pool).
3. ``connection_timeout`` bounds each connect; ``command_timeout`` bounds the wait for each
   reply. A blocking command (BLPOP and its kin) asks Redis to wait ``t`` seconds: its reply
   may take ``t + command_timeout``, so long blocking waits never need a long command timeout.
4. ``name`` becomes the connection's ``CLIENT SETNAME`` (``tq:<name>:<pid>``), so
   ``CLIENT LIST`` shows which taskqueue process holds which connection.
5. The URL picks redis-py's own client (``redis_url.py`` lists the forms): ``redis://`` and
   ``rediss://`` one server; ``redis+cluster://`` a ``RedisCluster`` (pool_size then bounds the
   pool of each node, asyncio included: ``cluster_bound.py``); ``redis+sentinel://`` the primary named by a ``Sentinel``, followed through
   failovers. TLS schemes use ``tls_ca_file``, ``tls_cert_file`` and ``tls_key_file``.
6. Credentials: the servers' from the URL or ``username``/``password``; the Sentinels' own from
   ``sentinel_username``/``sentinel_password``. Passwords never appear in a repr.
7. ``pin_redis_version()``: redis-py 8 reads its own version from the installed package's
   metadata (``importlib.metadata``, an e-mail header parse) for every connection it opens, to
   send it with ``CLIENT SETINFO``. The pre-fork master pins that lookup's result once for the
   whole process, so that no worker, nor any redis-py client a task opens, reads it again.
Query parameters of the URL (``?socket_timeout=2``) are redis-py's and win over the settings.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.connection
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.backoff
import redis.cluster
import redis.connection
import redis.retry
import redis.sentinel
import redis.utils
from hiredis import pack_command

from .cluster_bound import BoundedAsyncCluster
from .config.schema import BY_PATH
from .redis_url import BadRedisUrl, RedisTarget, credential_problems, parse_redis_url

#: Longest single blocking wait (BLPOP) taskqueue asks of Redis (s): dead connections are
#: noticed at least this often.
MAX_BLOCK = 10.0
#: Commands whose last argument is a time (s) Redis waits before replying (0 = forever).
BLOCKING = frozenset({"BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BZPOPMIN", "BZPOPMAX"})


def pin_redis_version() -> None:
    """Look redis-py's version up now, once, and have every later connection of this process
    (and of its forked children) reuse it (duty 7). Idempotent; a no-op on a redis-py without
    that lookup.

    Each lookup costs ~0.7 ms of CPU, and in a forked worker much more in memory: it runs the
    e-mail parser on the package's metadata file, whose code and objects then copy the pages
    they touch (idle worker tree USS ~3 MiB lower in ``bench/idle_memory.py``)."""
    lookup = getattr(redis.utils, "get_lib_version", None)
    if lookup is None or getattr(lookup, "_taskqueue_pinned", False):
        return
    version = lookup()

    @functools.wraps(lookup)
    def pinned() -> str:
        return version

    pinned._taskqueue_pinned = True  # type: ignore[attr-defined]
    redis.utils.get_lib_version = pinned


def _default(key: str) -> Any:
    return BY_PATH[f"redis.{key}"].default


def default_url() -> str:
    """``$REDIS_URL``, else the schema's default ``redis.url``."""
    return os.environ.get("REDIS_URL") or _default("url")


@dataclass(frozen=True)
class RedisSettings:
    """Where Redis is and how to talk to it (the ``[redis]`` section minus the key names)."""

    url: str = ""
    pool_size: int = _default("pool_size")
    connection_timeout: float = _default("connection_timeout")
    command_timeout: float = _default("command_timeout")
    tls_ca_file: str = _default("tls_ca_file")
    tls_cert_file: str = _default("tls_cert_file")
    tls_key_file: str = _default("tls_key_file")
    min_replicas_acked: int = _default("min_replicas_acked")
    replica_ack_timeout: float = _default("replica_ack_timeout")
    username: str = _default("username")
    password: str = field(default=_default("password"), repr=False)
    sentinel_username: str = _default("sentinel_username")
    sentinel_password: str = field(default=_default("sentinel_password"), repr=False)

    def __post_init__(self) -> None:
        if not self.url:
            object.__setattr__(self, "url", default_url())
        target = parse_redis_url(self.url)
        files = {"tls_ca_file": self.tls_ca_file, "tls_cert_file": self.tls_cert_file,
                 "tls_key_file": self.tls_key_file}  # fmt: skip
        given = [k for k, v in files.items() if v]
        if given and not target.tls:
            raise BadRedisUrl(
                f"redis.{given[0]} is set but redis.url does not use TLS: use rediss://, "
                "rediss+cluster:// or rediss+sentinel://, or leave the TLS files unset"
            )
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise BadRedisUrl("redis.tls_cert_file and redis.tls_key_file go together: set both")
        problems = credential_problems(
            self.url, server_auth=bool(self.username or self.password),
            sentinel_auth=bool(self.sentinel_username or self.sentinel_password),
        )  # fmt: skip
        if problems:
            raise BadRedisUrl(problems[0])

    @property
    def target(self) -> RedisTarget:
        return parse_redis_url(self.url)

    @classmethod
    def from_config(cls, cfg: Any) -> RedisSettings:
        """From a loaded ``TaskQueueConfig``."""
        r = cfg.redis
        return cls(**{f: getattr(r, f) for f in cls.__dataclass_fields__})

    def server_credentials(self) -> dict[str, Any]:
        """``username``/``password`` of the servers: the URL's, else the settings' (never both)."""
        t = self.target
        return {"username": t.username or self.username or None,
                "password": t.password or self.password or None}  # fmt: skip

    def tls_options(self) -> dict[str, Any]:
        """redis-py's ``ssl_*`` keyword arguments for the TLS files set."""
        out: dict[str, Any] = {}
        if self.tls_ca_file:
            out["ssl_ca_certs"] = self.tls_ca_file
        if self.tls_cert_file:
            out["ssl_certfile"] = self.tls_cert_file
            out["ssl_keyfile"] = self.tls_key_file
        return out

    @classmethod
    def of(cls, value: RedisSettings | str | None) -> RedisSettings:
        """Settings as given, or defaults for a URL (``None``: ``$REDIS_URL`` or localhost)."""
        return value if isinstance(value, RedisSettings) else cls(value or "")


def connect(settings: RedisSettings | str | None = None, *, name: str | None = None) -> Any:
    """A synchronous client on its own bounded pool: ``redis.Redis``, or ``RedisCluster``."""
    s = RedisSettings.of(settings)
    t = s.target
    if t.kind == "cluster":
        seed, *more = t.hosts
        return redis.cluster.RedisCluster(
            url=f"redis://{seed[0]}:{seed[1]}{'?' + t.query if t.query else ''}",
            startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in more],
            connection_pool_class=redis.BlockingConnectionPool,
            **_node_options(s, t, name, _block_aware(_SyncBlockAware, _tls_base(t, redis.connection))),
        )  # fmt: skip
    if t.kind == "sentinel":
        conn = (
            redis.sentinel.SentinelManagedSSLConnection
            if t.tls
            else redis.sentinel.SentinelManagedConnection
        )
        sentinel = redis.sentinel.Sentinel(
            list(t.hosts), sentinel_kwargs=_sentinel_options(s, t, redis.retry.Retry)
        )
        return sentinel.master_for(
            t.service, redis_class=redis.Redis, connection_pool_class=_BlockingSentinelPool,
            db=t.db, **_node_options(s, t, name, _block_aware(_SyncBlockAware, conn)),
        )  # fmt: skip
    pool = _pool(SparePool, redis.connection, _SyncBlockAware, s, name)
    return redis.Redis(connection_pool=pool)


class SparePool(redis.BlockingConnectionPool):
    """redis-py's bounded pool, one of whose connections a runner may keep between its calls
    (``runner.Spare``: taking and giving back through the pool costs more client time than the
    call's own writing). Every other taker first gets that spare back into the pool, or, while
    the runner is using it, has it returned to the pool when that call ends: the spare never
    keeps a caller waiting, and the pool's bound (``pool_size``) holds as before."""

    #: The runner's spare on this pool, if any (``runner.Spare``).
    spare: Any = None

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        spare = self.spare
        if spare is not None:
            spare.lend()
        return super().get_connection(*args, **kwargs)

    def get_connection_for_spare(self) -> Any:
        """A connection for the spare's holder, without asking the spare back."""
        try:
            return super().get_connection()
        except TypeError:  # redis-py before 5.3 wants a command name
            return super().get_connection("EVALSHA")


class AsyncSparePool(redis.asyncio.BlockingConnectionPool):
    """``SparePool`` for asyncio (``runner.AsyncSpare``): redis-py's asyncio pool takes a
    condition, a lock, an event dispatch and two metrics records for each taking and giving
    back. Every other taker first gets the spare back into the pool, or, while the runner is
    using it, has it returned when that call ends; the bound (``pool_size``) holds as before."""

    #: The runner's spare on this pool, if any (``runner.AsyncSpare``).
    spare: Any = None

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        spare = self.spare
        if spare is not None:
            await spare.lend()
        return await super().get_connection(*args, **kwargs)

    async def get_connection_for_spare(self) -> Any:
        """A connection for the spare's holder, without asking the spare back."""
        try:
            return await super().get_connection()
        except TypeError:  # redis-py before 5.3 wants a command name
            return await super().get_connection("EVALSHA")


def connect_async(settings: RedisSettings | str | None = None, *, name: str | None = None) -> Any:
    """An asyncio client on its own bounded pool (use it from one event loop)."""
    s = RedisSettings.of(settings)
    t = s.target
    if t.kind == "cluster":
        options = _node_options(s, t, name, None)
        options.pop("timeout")
        options.update(_query_options(t))
        client = BoundedAsyncCluster(
            startup_nodes=[redis.asyncio.cluster.ClusterNode(h, p) for h, p in t.hosts],
            ssl=t.tls, **options,
        )  # fmt: skip
        _async_cluster_block_aware(client, t)
        return client
    if t.kind == "sentinel":
        mod = redis.asyncio.sentinel
        conn = mod.SentinelManagedSSLConnection if t.tls else mod.SentinelManagedConnection
        sentinel = mod.Sentinel(
            list(t.hosts), sentinel_kwargs=_sentinel_options(s, t, redis.asyncio.retry.Retry)
        )
        return sentinel.master_for(
            t.service, redis_class=redis.asyncio.Redis,
            connection_pool_class=_AsyncBlockingSentinelPool, db=t.db,
            **_node_options(s, t, name, _block_aware(_AsyncBlockAware, conn)),
        )  # fmt: skip
    pool = _pool(AsyncSparePool, redis.asyncio.connection, _AsyncBlockAware, s, name)
    return redis.asyncio.Redis(connection_pool=pool)


def is_cluster(client: Any) -> bool:
    return isinstance(client, redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster)


def redis_ms(client: Any) -> int:
    """Redis's clock in ms (TIME; alone, as Redis Cluster pipelines refuse keyless commands).
    Every deadline and index that several hosts compare is in this time, not a host's."""
    return time_ms(client.time())


def time_ms(reply: Any) -> int:
    """A TIME reply, ``(seconds, microseconds)``, in ms."""
    secs, usecs = reply
    return int(secs) * 1000 + int(usecs) // 1000


def _tls_base(t: RedisTarget, module: Any) -> type:
    return module.SSLConnection if t.tls else module.Connection


def _query_options(t: RedisTarget) -> dict[str, Any]:
    """redis-py's typed options from the URL's query string (they win over the settings)."""
    if not t.query:
        return {}
    options = redis.connection.parse_url(f"redis://localhost?{t.query}")
    return {k: v for k, v in options.items() if k not in ("host", "port")}


def _node_options(s: RedisSettings, t: RedisTarget, name: str | None, conn: type | None) -> dict:
    """Keyword arguments of every data-node connection (cluster nodes, the Sentinel's primary)."""
    options: dict[str, Any] = {
        "max_connections": s.pool_size,
        "timeout": None,
        "socket_timeout": s.command_timeout,
        "socket_connect_timeout": s.connection_timeout,
        **s.server_credentials(),
    }
    if conn is not None:
        options["connection_class"] = conn
    if t.tls:
        options.update(s.tls_options())
    if name:
        options["client_name"] = f"tq:{name}:{os.getpid()}"
    if t.kind == "sentinel":
        options.update(_query_options(t))
    return options


def _sentinel_options(s: RedisSettings, t: RedisTarget, retry: type) -> dict[str, Any]:
    """How to talk to the Sentinels themselves (same timeouts and TLS, their own credentials).
    One immediate retry per Sentinel (a stale connection), not redis-py's 10 with back-off:
    redis-py asks the next Sentinel anyway, and a refused password then fails in milliseconds
    instead of seconds per Sentinel."""
    options: dict[str, Any] = {
        "retry": retry(redis.backoff.NoBackoff(), 1),
        "socket_timeout": s.command_timeout,
        "socket_connect_timeout": s.connection_timeout,
        "username": s.sentinel_username or None,
        "password": s.sentinel_password or None,
    }
    if t.tls:
        options["ssl"] = True
        options.update(s.tls_options())
    return options


class _BlockingSentinelPool(redis.sentinel.SentinelConnectionPool, redis.BlockingConnectionPool):
    """The Sentinel's pool (connects to the current primary) with the bounded, waiting pool."""


class _AsyncBlockingSentinelPool(
    redis.asyncio.sentinel.SentinelConnectionPool, redis.asyncio.BlockingConnectionPool
):
    """The asyncio twin of ``_BlockingSentinelPool``."""


def _async_cluster_block_aware(client: Any, t: RedisTarget) -> None:
    """Give the asyncio cluster's node connections the blocking-wait aware class (its
    constructor has no parameter for it: set it before the first command creates a node)."""
    base = redis.asyncio.connection.SSLConnection if t.tls else redis.asyncio.connection.Connection
    conn = _block_aware(_AsyncBlockAware, base)
    client.connection_kwargs["connection_class"] = conn
    for node in client.nodes_manager.startup_nodes.values():
        node.connection_class = conn


def _pool(pool_class: Any, module: Any, mixin: type, s: RedisSettings, name: str | None) -> Any:
    base = module.parse_url(s.url).get("connection_class", module.Connection)
    kwargs: dict[str, Any] = {
        "max_connections": s.pool_size,
        "timeout": None,  # wait for a free connection: each is back within its command's timeout
        "socket_timeout": s.command_timeout,
        "socket_connect_timeout": s.connection_timeout,
        "connection_class": _block_aware(mixin, base),
        **{k: v for k, v in s.server_credentials().items() if v},
    }
    if s.target.tls:
        kwargs.update(s.tls_options())
    if name:
        kwargs["client_name"] = f"tq:{name}:{os.getpid()}"
    return pool_class.from_url(s.url, **kwargs)


_CLASSES: dict[tuple[type, type], type] = {}


def _block_aware(mixin: type, base: type) -> type:
    key = (mixin, base)
    if key not in _CLASSES:
        _CLASSES[key] = type(f"BlockAware{base.__name__}", (mixin, base), {})
    return _CLASSES[key]


#: Argument types hiredis packs exactly as redis-py's encoder does (not bool, not float).
PLAIN = (str, bytes, int)


def _block_seconds(args: tuple[Any, ...]) -> float | None:
    """The wait a command asks of Redis (``inf`` for 0 = forever), or None if it never blocks."""
    if len(args) < 2:
        return None
    name = args[0]
    name = (name.decode() if isinstance(name, bytes) else str(name)).upper()
    if name not in BLOCKING:
        return None
    seconds = float(args[-1])
    return math.inf if seconds == 0 else seconds


def tls_hint(message: str, ca_file: str | None) -> str:
    """A TLS connection error with what to do about it."""
    if "CERTIFICATE_VERIFY_FAILED" in message:
        trusted = f"the CA in redis.tls_ca_file ({ca_file})" if ca_file else "the system's CAs"
        return (
            f"{message} -- TLS: the Redis server's certificate is not signed by {trusted}; set "
            "redis.tls_ca_file to the CA that signed it"
        )
    if "CERTIFICATE_REQUIRED" in message.upper() or "CERTIFICATE REQUIRED" in message.upper():
        return (
            f"{message} -- TLS: the Redis server requires a client certificate; set "
            "redis.tls_cert_file and redis.tls_key_file"
        )
    return message


class _TlsHints:
    """Connection errors say which TLS setting to fix."""

    def _error_message(self, exception: BaseException) -> str:
        ca = getattr(self, "ca_certs", None) or getattr(
            getattr(self, "ssl_context", None), "ca_certs", None
        )
        return tls_hint(super()._error_message(exception), ca)  # type: ignore[misc]


class _BlockMemo(_TlsHints):
    """Remembers how long the command just packed blocks in Redis, for the read of its reply.
    Single commands are packed by ``pack_command`` (the asyncio ``send_command`` and the
    cluster clients' nodes, which send packed commands themselves) or, in the sync client, by
    ``send_command`` itself. A lazy connect happens between the
    pack and the send, and its handshake (HELLO, CLIENT SETNAME) packs commands too: the
    subclasses' connect keeps the blocking command's memo across it."""

    _block: float | None = None

    def pack_command(self, *args: Any) -> Any:
        self._block = _block_seconds(args)
        return super().pack_command(*args)  # type: ignore[misc]

    def _plain_pack(self, args: tuple[Any, ...]) -> list[bytes] | None:
        """``args`` packed by hiredis in one call when every argument is a ``str``, ``bytes``
        or ``int``, the command name has no space and the encoding is strict UTF-8 (packed
        exactly as redis-py's encoder would); else None, for redis-py's packer. redis-py's
        asyncio connections encode each argument in Python (a third of a single enqueue's
        client time); its sync ones rebuild the argument tuple before hiredis packs it."""
        enc = self.encoder  # type: ignore[attr-defined]
        if enc.encoding != "utf-8" or enc.encoding_errors != "strict":
            return None
        name = args[0]
        if type(name) is not str or " " in name or not all(type(a) in PLAIN for a in args):
            return None
        return [pack_command(args)]


class _SyncBlockAware(_BlockMemo):
    """Reads a blocking command's reply with ``command_timeout`` plus the time it blocks."""

    def send_command(self, *args: Any, **kwargs: Any) -> None:  # packs without pack_command
        self._block = _block_seconds(args)
        packed = self._plain_pack(args)
        if packed is None:
            super().send_command(*args, **kwargs)  # type: ignore[misc]
        else:
            self.send_packed_command(packed, check_health=kwargs.get("check_health", True))  # type: ignore[attr-defined]

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        block = self._block
        try:
            return super().connect(*args, **kwargs)  # type: ignore[misc]
        finally:
            self._block = block

    def connect_check_health(self, *args: Any, **kwargs: Any) -> Any:  # redis-py >= 6
        block = self._block
        try:
            return super().connect_check_health(*args, **kwargs)  # type: ignore[misc]
        finally:
            self._block = block

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        block, self._block = self._block, None
        if block is not None and "timeout" not in kwargs and self.socket_timeout:  # type: ignore[attr-defined]
            kwargs["timeout"] = None if block == math.inf else self.socket_timeout + block  # type: ignore[attr-defined]
        return super().read_response(*args, **kwargs)  # type: ignore[misc]


class _AsyncBlockAware(_BlockMemo):
    """The asyncio twin of ``_SyncBlockAware``; packs plain commands with hiredis too."""

    def pack_command(self, *args: Any) -> Any:
        packed = self._plain_pack(args)
        if packed is None:
            return super().pack_command(*args)
        self._block = _block_seconds(args)
        return packed

    async def connect(self, *args: Any, **kwargs: Any) -> Any:
        block = self._block
        try:
            return await super().connect(*args, **kwargs)  # type: ignore[misc]
        finally:
            self._block = block

    async def connect_check_health(self, *args: Any, **kwargs: Any) -> Any:  # redis-py >= 6
        block = self._block
        try:
            return await super().connect_check_health(*args, **kwargs)  # type: ignore[misc]
        finally:
            self._block = block

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        block, self._block = self._block, None
        if block is not None and kwargs.get("timeout") is None and self.socket_timeout:  # type: ignore[attr-defined]
            kwargs["timeout"] = block + self.socket_timeout  # type: ignore[attr-defined]
        return await super().read_response(*args, **kwargs)  # type: ignore[misc]
