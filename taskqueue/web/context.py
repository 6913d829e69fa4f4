"""What every HTTP handler shares: the configuration, one Redis client, the key names, the
producer client for write actions, and the few things remembered between requests.

Duties:
1. Build the Redis client from ``[redis]`` (``taskqueue.connection``; connecting gives up
   within 2 s, so a request never hangs on a dead Redis) and the ``TaskQueue`` of the writes.
2. Read a metrics snapshot, and remember since when Redis has been unreachable.
3. Keep alert first-seen times in Redis (``Keys.alerts``), so every web process reports the
   same "since".
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import redis

from ..client import TaskQueue
from ..config import TaskQueueConfig
from ..config.schema import SETTINGS
from ..connection import RedisSettings, connect
from ..keys import Keys
from ..metrics import MetricsSnapshot, read_snapshot
from ..metrics.alerts import Alert, Thresholds, unreachable
from ..metrics.sla import Targets
from ..redact import redact_text

#: Longest wait (s) to connect to Redis: a request never hangs long on a dead Redis.
CONNECT_TIMEOUT = 2.0

#: Errors that mean "Redis is not answering" (answered with 503, never 500).
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
              redis.exceptions.BusyLoadingError, redis.exceptions.ReadOnlyError)  # fmt: skip


def load_config(config: TaskQueueConfig | str | None, redis_url: str | None) -> TaskQueueConfig:
    """A config object as given, a file path loaded, or None: ``$TASKQUEUE_CONFIG`` and the
    environment; ``redis_url`` overrides ``[redis] url``."""
    if not isinstance(config, TaskQueueConfig):
        return TaskQueueConfig.load(config, cli={"redis.url": redis_url} if redis_url else None)
    if not redis_url:
        return config
    values = {s.path: config.get(s.path) for s in SETTINGS}
    origins = {s.path: config.origin_of(s.path) for s in SETTINGS}
    values["redis.url"], origins["redis.url"] = redis_url, "create_app(redis_url=...)"
    return TaskQueueConfig(values, origins).validate()


@dataclass
class Context:
    cfg: TaskQueueConfig
    redis: redis.Redis
    keys: Keys
    tq: TaskQueue
    started: float = field(default_factory=time.time)
    redis_down_since: int | None = None

    @classmethod
    def build(cls, cfg: TaskQueueConfig) -> Context:
        settings = RedisSettings.from_config(cfg)
        settings = replace(
            settings,
            pool_size=max(4, settings.pool_size),
            connection_timeout=min(settings.connection_timeout, CONNECT_TIMEOUT),
        )
        client = connect(settings, name="web")
        keys = Keys(cfg.redis.key_prefix, cfg.redis.namespace)
        tq = TaskQueue(settings, namespace=cfg.redis.namespace, prefix=cfg.redis.key_prefix,
                       client=client)  # fmt: skip
        return cls(cfg, client, keys, tq)

    # -- settings read per request (a reloaded config object keeps working) -------------------
    @property
    def targets(self) -> Targets:
        return Targets.from_config(self.cfg)

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds.from_config(self.cfg)

    @property
    def priority(self) -> list[str]:
        return list(self.cfg.workers.queues)

    # -- reads ------------------------------------------------------------------------------
    def snapshot(self) -> MetricsSnapshot:
        snap = read_snapshot(self.redis, self.keys)
        self.redis_down_since = None
        return snap

    def mark_down(self) -> int:
        if self.redis_down_since is None:
            self.redis_down_since = int(time.time() * 1000)
        return self.redis_down_since

    def down_alert(self, exc: BaseException) -> Alert:
        return unreachable(reason(exc), self.mark_down())

    def stamp(self, alerts: Iterable[Alert], now_ms: int) -> list[Alert]:
        """Attach first-seen times (kept in ``Keys.alerts``); forget cleared alerts."""
        alerts = list(alerts)
        seen = {k.decode(): int(v) for k, v in self.redis.hgetall(self.keys.alerts).items()}
        active = {a.key for a in alerts}
        pipe = self.redis.pipeline(transaction=False)
        for a in alerts:
            if a.key not in seen:
                pipe.hsetnx(self.keys.alerts, a.key, now_ms)
        gone = [k for k in seen if k not in active]
        if gone:
            pipe.hdel(self.keys.alerts, *gone)
        pipe.pexpire(self.keys.alerts, 7 * 86_400_000)
        pipe.execute()
        return [
            Alert(a.key, a.name, a.severity, a.message, a.value, a.threshold,
                  seen.get(a.key, now_ms))
            for a in alerts
        ]  # fmt: skip

    def close(self) -> None:
        self.tq.close()


def reason(exc: BaseException) -> str:
    """A one-line, credential-free description of a Redis error."""
    text = str(exc).strip() or type(exc).__name__
    return redact_text(f"{type(exc).__name__}: {text}")[:300]


def uptime(started: float) -> float:
    return round(time.time() - started, 1)
