"""Every Redis error, classified in one place, and the one way each kind is handled.

==========  ========================================================  ===========================
kind        what                                                      handling
==========  ========================================================  ===========================
``outage``  connection lost/refused, timeout, OOM (a full Redis       back off, keep every job and
            under ``noeviction``), BUSY (a long script), LOADING       lease held, log once when it
            (replaying the AOF), READONLY (a failover in progress),    starts, when its cause
            MASTERDOWN, TRYAGAIN, CLUSTERDOWN, a slot in migration     changes, and when it ends
            (ASK, MOVED, redis-py's "TTL exhausted" after too many)
``fatal``   wrong password or user (of a server, or of the Sentinels), at start: exit 2 with one
            missing ACL permission, no AUTH configured, a malformed    clear line; later: logged,
            URL, a TLS certificate refused                             retried like an outage
``bug``     anything else (a script error, a wrong type)               logged with the call that
                                                                       failed, then backed off
==========  ========================================================  ===========================

``wrap`` turns a redis-py exception into the ``BrokerError`` subclass callers catch
(``RedisUnavailable``, ``RedisRefused``, or ``BrokerError``), with the original as ``__cause__``.
``Outage`` is the shared state machine of the master, the worker and their background tasks.
"""

from __future__ import annotations

import logging
import random
import re
import time

import redis.exceptions as rx
from redis.sentinel import MasterNotFoundError

from .errors import BrokerError, RedisRefused, RedisUnavailable
from .redact import redact_text, redact_url

OUTAGE, FATAL, BUG = "outage", "fatal", "bug"
_FATAL_TYPES = (rx.AuthenticationError, rx.AuthorizationError, rx.NoPermissionError)
_OUTAGE_TYPES = (
    rx.ConnectionError,  # includes BusyLoadingError (LOADING)
    rx.TimeoutError,
    rx.OutOfMemoryError,
    rx.ReadOnlyError,
    rx.MasterDownError,
    rx.TryAgainError,
    rx.ClusterDownError,
    rx.SlotNotCoveredError,  # Redis Cluster: the slot's primary failed, no replica took over yet
    # A slot in migration, raised where a command went to one node on purpose (the acknowledged
    # enqueue's EVALSHA + WAIT): the script did not run there; the slot settles in a moment.
    rx.AskError,
    rx.MovedError,
    OSError,
)
#: Error codes that mean "not now" when redis-py has no class for them, or when they come
#: wrapped in a script error (Redis 6.2 reports `ERR Error running script ... -OOM ...`).
_OUTAGE_CODES = ("OOM", "BUSY", "LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN",
                 "NOREPLICAS")  # fmt: skip
_FATAL_CODES = ("NOAUTH", "WRONGPASS", "NOPERM")


def _codes(exc: BaseException) -> list[str]:
    """The Redis error codes named in an error's text (its own, or one a script relayed)."""
    text = str(exc)
    words = [text.split(" ", 1)[0]]
    words += [w.lstrip("-") for w in text.split() if w.startswith("-")]
    return [w.rstrip(":") for w in words]


def _tls_refused(exc: BaseException) -> bool:
    """A TLS handshake that no retry fixes: an untrusted server certificate, or a server that
    wants a client certificate (connection.py adds which setting to change)."""
    return isinstance(exc, rx.ConnectionError) and "-- TLS:" in str(exc)


def _sentinels_refused(exc: BaseException) -> bool:
    """No Sentinel named the primary because they refused our credentials (redis-py reports
    each Sentinel's error inside MasterNotFoundError, which is otherwise an outage)."""
    text = str(exc)
    return isinstance(exc, MasterNotFoundError) and any(
        word in text for word in ("AuthenticationError", "NOAUTH", "WRONGPASS", "NoPermission")
    )


def classify(exc: BaseException) -> str:
    """``outage``, ``fatal`` or ``bug`` (see the module docstring)."""
    if isinstance(exc, _FATAL_TYPES) or _tls_refused(exc) or _sentinels_refused(exc):
        return FATAL
    if isinstance(exc, _OUTAGE_TYPES):
        return OUTAGE
    if isinstance(exc, rx.RedisClusterException) and "cannot be connected" in str(exc):
        return OUTAGE  # no cluster node answers (redis-py cannot learn the slot map)
    if isinstance(exc, rx.ClusterError) and "TTL exhausted" in str(exc):
        # redis-py gave up after 16 MOVED/ASK/TRYAGAIN replies: a slot is being migrated (a
        # multi-key script gets TRYAGAIN while its slot's keys are split between two nodes)
        return OUTAGE
    if isinstance(exc, rx.ResponseError):
        codes = _codes(exc)
        if any(c in _FATAL_CODES for c in codes):
            return FATAL
        if any(c in _OUTAGE_CODES for c in codes) or "command not allowed when used memory" in str(
            exc
        ):
            return OUTAGE
    return BUG


def describe(exc: BaseException) -> str:
    """A one-line, credential-free description: what Redis said, with the kind's meaning."""
    text = redact_text(f"{type(exc).__name__}: {exc}".strip())
    if isinstance(exc, rx.OutOfMemoryError) or "used memory" in text:
        return f"{text} (Redis is full: free memory or raise maxmemory)"
    return text


def wrap(exc: BaseException, what: str = "") -> BrokerError:
    """The ``BrokerError`` subclass to raise for ``exc`` (chain it: ``raise wrap(e) from e``)."""
    kind = classify(exc)
    where = f" ({what})" if what else ""
    if kind == OUTAGE:
        return RedisUnavailable(f"Redis is unavailable{where}: {describe(exc)}")
    if kind == FATAL and _tls_refused(exc):
        return RedisRefused(f"Redis refused the TLS connection{where}: {describe(exc)}")
    if kind == FATAL and _sentinels_refused(exc):
        said = sorted(
            set(re.findall(r"\b(\w+Error|NOAUTH|WRONGPASS)\b", str(exc))) - {"MasterNotFoundError"}
        )
        return RedisRefused(
            f"the Sentinels refused the connection{where}: no Sentinel accepted the credentials "
            f"({', '.join(said)}). Check "
            "redis.sentinel_password and redis.sentinel_username (the Sentinels' own "
            "credentials, not the servers')"
        )
    if kind == FATAL:
        return RedisRefused(
            f"Redis refused the connection{where}: {describe(exc)}. Check the password or ACL "
            "user in the Redis URL, or redis.password and redis.username (--redis-url-file or "
            "TASKQUEUE_REDIS__PASSWORD keep it out of the process list)"
        )
    return BrokerError(f"Redis error{where}: {describe(exc)}")


class Outage:
    """Up/down state of one process's Redis link: logging once per change, and the back-off.

    ``failed(exc)`` on every error (returns the seconds to wait before trying again),
    ``ok()`` after every success. Nothing is logged while the state stays the same.
    """

    def __init__(self, log: logging.Logger, backoff: tuple[float, float] = (0.1, 5.0)) -> None:
        self.log = log
        self.first, self.cap = backoff
        self.since: float | None = None
        self.count = 0
        self.cause: str | None = None
        self.delay = self.first

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException, what: str = "") -> float:
        kind = classify(exc)
        cause = f"{kind}:{type(exc).__name__}"
        if self.since is None:
            self.since = time.monotonic()
            self.count += 1
            self.delay = self.first
            self.log.error("lost Redis (%s); retrying with backoff", self._text(exc, kind, what))
        elif cause != self.cause:
            self.log.warning("Redis still unavailable, now: %s", self._text(exc, kind, what))
        self.cause = cause
        wait = self.delay * random.uniform(0.5, 1.0)
        self.delay = min(self.delay * 2, self.cap)
        return wait

    def ok(self) -> None:
        if self.since is not None:
            self.log.warning("Redis is back after %.1fs", time.monotonic() - self.since)
            self.since = None
            self.cause = None
            self.delay = self.first

    @staticmethod
    def _text(exc: BaseException, kind: str, what: str) -> str:
        text = describe(exc)
        if kind == BUG:
            text = f"unexpected error{f' in {what}' if what else ''}, please report it: {text}"
        elif kind == FATAL:
            text = f"refused: {text}"
        return text


def preflight(settings: object, timeout: float = 5.0) -> str | None:
    """Check at start that Redis accepts us (``settings``: a URL or ``RedisSettings``): None if
    it does or is only unavailable for now (an outage is waited out), else one line saying what
    to fix (a refused password or certificate, a bad URL). Never includes the password."""
    import dataclasses

    from .connection import RedisSettings, connect

    try:
        s = RedisSettings.of(settings)  # type: ignore[arg-type]
        s = dataclasses.replace(s, connection_timeout=timeout, command_timeout=timeout)
        url = s.url
        client = connect(s)
    except (ValueError, TypeError) as exc:
        url = settings if isinstance(settings, str) else getattr(settings, "url", "")
        return f"invalid Redis URL {redact_url(url)}: {redact_text(str(exc))}"
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001 - classified below
        if classify(exc) == FATAL:
            return str(wrap(exc, redact_url(url)))
    finally:
        client.close()
    return None


def wrapping_errors(cls: type) -> type:
    """Class decorator: every public method of ``cls`` (sync or async) raises ``wrap(e)`` for
    a redis-py error ``e`` instead of the raw exception. Our own errors pass through."""
    import functools
    import inspect

    import redis

    raw = redis.RedisError  # (redis-py turns socket errors into ConnectionError)
    for name, fn in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(fn):
            continue
        if inspect.iscoroutinefunction(fn):

            async def method(*a: object, _fn=fn, _name=name, **kw: object) -> object:  # noqa: ANN001
                try:
                    return await _fn(*a, **kw)
                except raw as exc:
                    raise wrap(exc, _name) from exc
        else:

            def method(*a: object, _fn=fn, _name=name, **kw: object) -> object:  # noqa: ANN001
                try:
                    return _fn(*a, **kw)
                except raw as exc:
                    raise wrap(exc, _name) from exc

        setattr(cls, name, functools.wraps(fn)(method))
    return cls
