"""The master's control plane in Redis: its status record and its command list.

Duties:
1. ``publish``: every heartbeat SET ``Keys.master(id)`` to the JSON status record (PX = 5
   heartbeats) and ZADD the id to ``Keys.masters`` (score = now in ms), in one round trip.
2. ``poll``: LPOP up to ``BATCH`` JSON commands from ``Keys.control(id)``, run each through
   the same master methods the signals use, RPUSH a JSON reply ``{"ok", "message", "data"}``
   to ``Keys.reply(request id)`` with EXPIRE ``REPLY_TTL``.
3. ``unregister``: delete the record and ZREM the id on exit. Once at start, drop the index ids
   and registered-tasks entries that SIGKILLed masters left behind.
Commands: ping, scale {n | delta}, quiet, resume, drain, reload, stop {fast}, dump, status,
autoscaler {pin: n | unpin: true | nothing for its status},
schedules (look at the periodic schedules again). A request with ``"noreply": true`` gets none.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from .. import registered
from ..connection import redis_ms
from ..control.client import STALE_MS
from ..keys import Keys
from .redisguard import RedisGuard

log = logging.getLogger("taskqueue.master")
BATCH = 10
REPLY_TTL = 60
HEARTBEATS_TTL = 5
Reply = tuple[bool, str, dict[str, Any]]


class Commands(Protocol):
    def scale(self, n: int, why: str) -> Reply: ...
    def set_quiet(self, quiet: bool, why: str) -> Reply: ...
    def drain(self, why: str) -> Reply: ...
    def reload(self, why: str) -> Reply: ...
    def stop(self, fast: bool, why: str) -> Reply: ...
    def dump(self, why: str) -> Reply: ...
    def autoscaler(self, pin: int | None, unpin: bool) -> Reply: ...
    def schedules_changed(self, why: str) -> Reply: ...
    def status(self) -> dict[str, Any]: ...


class ControlPlane:
    def __init__(self, redis: RedisGuard, keys: Keys, master_id: str, heartbeat: float) -> None:
        self.redis = redis
        self.keys = keys
        self.id = master_id
        self.ttl_ms = int(heartbeat * HEARTBEATS_TTL * 1000)
        self._pruned = False

    def publish(self, record: dict[str, Any], index: bool = True, tasks: str = "") -> None:
        """Write the status record; ``index`` also refreshes the id in the masters index
        (needed far less often: readers prune ids only after a minute without it); ``tasks``
        is this master's entry of the registered-tasks hash (``registered.entry``)."""
        data = json.dumps(record, default=str, separators=(",", ":"))

        def go() -> None:
            if not index and not tasks:
                self.redis.client.set(self.keys.master(self.id), data, px=self.ttl_ms)
                return
            if index:  # scored in Redis time: readers prune with it, whatever our clock says
                now_ms = redis_ms(self.redis.client)
            pipe = self.redis.client.pipeline(transaction=False)
            pipe.set(self.keys.master(self.id), data, px=self.ttl_ms)
            if index:
                pipe.zadd(self.keys.masters, {self.id: now_ms})
            if tasks:
                pipe.hset(self.keys.registered, self.id, tasks)
            pipe.execute()
            if tasks and not self._pruned:
                self._prune(now_ms)

        self.redis.call(go)

    def _prune(self, now_ms: int) -> None:
        """Once, at start: drop what SIGKILLed masters left behind (a master that dies without
        its ``unregister``): their masters-index ids and their registered-tasks entries.
        Readers skip both once stale; this keeps them from piling up across crashes."""
        # Entries expire by their publisher's clock, as every reader judges them.
        stale = registered.live_entries(self.redis.client.hgetall(self.keys.registered))[1]
        pipe = self.redis.client.pipeline(transaction=False)
        pipe.zremrangebyscore(self.keys.masters, "-inf", now_ms - STALE_MS)
        if stale:
            pipe.hdel(self.keys.registered, *stale)
        pipe.execute()
        self._pruned = True
        if stale:
            log.info("removed %d stale registered-task entr%s of masters gone without a stop",
                     len(stale), "y" if len(stale) == 1 else "ies")  # fmt: skip

    def poll(self, target: Commands) -> int:
        raw = self.redis.call(lambda: self.redis.client.lpop(self.keys.control(self.id), BATCH))
        self.handle(raw or [], target)
        return len(raw or [])

    def handle(self, items: list[bytes], target: Commands) -> None:
        for item in items:
            self._one(item, target)

    def _one(self, item: bytes, target: Commands) -> None:
        try:
            req = json.loads(item)
            req_id = str(req["id"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed control command: %r", item[:200])
            return
        try:
            ok, message, data = run_command(target, req.get("cmd"), req.get("args") or {})
        except Exception as exc:  # a bug must not kill the master; tell the caller
            log.exception("control command %r failed", req.get("cmd"))
            ok, message, data = False, f"{type(exc).__name__}: {exc}", {}
        log.info("control command %s (request %s): %s", req.get("cmd"), req_id, message)
        if req.get("noreply"):
            return
        reply = json.dumps({"ok": ok, "message": message, "data": data}, default=str)

        def go() -> None:
            pipe = self.redis.client.pipeline(transaction=False)
            pipe.rpush(self.keys.reply(req_id), reply)
            pipe.expire(self.keys.reply(req_id), REPLY_TTL)
            pipe.execute()

        self.redis.call(go)

    def unregister(self) -> None:
        def go() -> None:
            pipe = self.redis.client.pipeline(transaction=False)
            pipe.delete(self.keys.master(self.id))
            pipe.zrem(self.keys.masters, self.id)
            pipe.hdel(self.keys.registered, self.id)
            pipe.execute()

        self.redis.call(go)


def run_command(target: Commands, cmd: Any, args: dict[str, Any]) -> Reply:
    why = "control command"
    if cmd == "ping":
        return True, "pong", {}
    if cmd == "scale":
        current = int(target.status()["desired"])
        if "n" in args:
            n = args["n"]
        elif "delta" in args:
            n = current + int(args["delta"])
        else:
            return False, "scale needs args {'n': int} or {'delta': int}", {}
        if not isinstance(n, int) or isinstance(n, bool):
            return False, f"scale: n must be an integer, got {n!r}", {}
        return target.scale(n, why)
    if cmd == "quiet":
        return target.set_quiet(True, why)
    if cmd == "resume":
        return target.set_quiet(False, why)
    if cmd == "drain":
        return target.drain(why)
    if cmd == "reload":
        return target.reload(why)
    if cmd == "stop":
        return target.stop(bool(args.get("fast")), why)
    if cmd == "dump":
        return target.dump(why)
    if cmd == "status":
        return True, "status", target.status()
    if cmd == "autoscaler":
        pin = args.get("pin")
        if pin is not None and (not isinstance(pin, int) or isinstance(pin, bool)):
            return False, f"autoscaler: pin must be an integer, got {pin!r}", {}
        return target.autoscaler(pin, bool(args.get("unpin")))
    if cmd == "schedules":
        return target.schedules_changed(why)
    known = "ping, scale, quiet, resume, drain, reload, stop, dump, status, autoscaler, schedules"
    return False, f"unknown command {cmd!r}; known: {known}", {}
