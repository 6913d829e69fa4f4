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
Query parameters of the URL (``?socket_timeout=2``) are redis-py's and win over the settings.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.connection
import redis.connection

from .config.schema import BY_PATH

#: Longest single blocking wait (BLPOP) taskqueue asks of Redis (s): dead connections are
#: noticed at least this often.
MAX_BLOCK = 10.0
#: Commands whose last argument is a time (s) Redis waits before replying (0 = forever).
BLOCKING = frozenset({"BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BZPOPMIN", "BZPOPMAX"})


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

    def __post_init__(self) -> None:
        if not self.url:
            object.__setattr__(self, "url", default_url())

    @classmethod
    def from_config(cls, cfg: Any) -> RedisSettings:
        """From a loaded ``TaskQueueConfig``."""
        r = cfg.redis
        return cls(r.url, r.pool_size, r.connection_timeout, r.command_timeout)

    @classmethod
    def of(cls, value: RedisSettings | str | None) -> RedisSettings:
        """Settings as given, or defaults for a URL (``None``: ``$REDIS_URL`` or localhost)."""
        return value if isinstance(value, RedisSettings) else cls(value or "")


def connect(settings: RedisSettings | str | None = None, *, name: str | None = None) -> redis.Redis:
    """A synchronous client on its own bounded pool."""
    s = RedisSettings.of(settings)
    pool = _pool(redis.BlockingConnectionPool, redis.connection, _SyncBlockAware, s, name)
    return redis.Redis(connection_pool=pool)


def connect_async(
    settings: RedisSettings | str | None = None, *, name: str | None = None
) -> redis.asyncio.Redis:
    """An asyncio client on its own bounded pool (use it from one event loop)."""
    s = RedisSettings.of(settings)
    pool = _pool(
        redis.asyncio.BlockingConnectionPool, redis.asyncio.connection, _AsyncBlockAware, s, name
    )
    return redis.asyncio.Redis(connection_pool=pool)


def _pool(pool_class: Any, module: Any, mixin: type, s: RedisSettings, name: str | None) -> Any:
    base = module.parse_url(s.url).get("connection_class", module.Connection)
    kwargs: dict[str, Any] = {
        "max_connections": s.pool_size,
        "timeout": None,  # wait for a free connection: each is back within its command's timeout
        "socket_timeout": s.command_timeout,
        "socket_connect_timeout": s.connection_timeout,
        "connection_class": _block_aware(mixin, base),
    }
    if name:
        kwargs["client_name"] = f"tq:{name}:{os.getpid()}"
    return pool_class.from_url(s.url, **kwargs)


_CLASSES: dict[tuple[type, type], type] = {}


def _block_aware(mixin: type, base: type) -> type:
    key = (mixin, base)
    if key not in _CLASSES:
        _CLASSES[key] = type(f"BlockAware{base.__name__}", (mixin, base), {})
    return _CLASSES[key]


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


class _SyncBlockAware:
    """Reads a blocking command's reply with ``command_timeout`` plus the time it blocks."""

    _block: float | None = None

    def send_command(self, *args: Any, **kwargs: Any) -> None:
        self._block = _block_seconds(args)
        super().send_command(*args, **kwargs)  # type: ignore[misc]

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        block, self._block = self._block, None
        if block is not None and "timeout" not in kwargs and self.socket_timeout:  # type: ignore[attr-defined]
            kwargs["timeout"] = None if block == math.inf else self.socket_timeout + block  # type: ignore[attr-defined]
        return super().read_response(*args, **kwargs)  # type: ignore[misc]


class _AsyncBlockAware:
    """The asyncio twin of ``_SyncBlockAware``."""

    _block: float | None = None

    async def send_command(self, *args: Any, **kwargs: Any) -> None:
        self._block = _block_seconds(args)
        await super().send_command(*args, **kwargs)  # type: ignore[misc]

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        block, self._block = self._block, None
        if block is not None and kwargs.get("timeout") is None and self.socket_timeout:  # type: ignore[attr-defined]
            kwargs["timeout"] = block + self.socket_timeout  # type: ignore[attr-defined]
        return await super().read_response(*args, **kwargs)  # type: ignore[misc]
