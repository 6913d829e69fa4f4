"""Talk to running supervisors through Redis (the master side is ``taskqueue/master/control.py``).

Duties:
1. List live masters: ids in ``Keys.masters`` whose status record ``Keys.master(id)`` has not
   expired (a dead host's record expires by itself; stale ids are pruned here).
2. Send a command: RPUSH ``{"id", "cmd", "args"}`` to ``Keys.control(master)``, then BLPOP the
   reply at ``Keys.reply(request)`` until a deadline; no polling.
3. Resolve targets: one ``--master`` id, ``--all``, or the only master running.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis
import redis.exceptions

from ..connection import MAX_BLOCK, redis_ms
from ..errors import TaskQueueError
from ..keys import Keys

#: Masters whose last heartbeat is older than this are pruned from the index (ms).
STALE_MS = 60_000


class ControlError(TaskQueueError):
    """A control command could not be delivered or was refused."""


class NoSuchMaster(ControlError):
    """No running master matches the target."""


class ReplyTimeout(ControlError):
    """A master did not reply before the deadline."""


@dataclass(frozen=True)
class Reply:
    master: str
    ok: bool
    message: str
    data: dict[str, Any]


class ControlClient:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def masters(self) -> list[dict[str, Any]]:
        """Status records of every live master, sorted by id."""
        ids = [i.decode() for i in self.redis.zrange(self.keys.masters, 0, -1)]
        if not ids:
            return []
        records = self.redis.mget([self.keys.master(i) for i in ids])
        live = [json.loads(r) for r in records if r]
        cutoff = redis_ms(self.redis) - STALE_MS  # the index is scored in Redis time
        self.redis.zremrangebyscore(self.keys.masters, "-inf", cutoff)
        return sorted(live, key=lambda r: r["id"])

    def other_namespaces(self, max_scans: int = 20) -> list[tuple[str, str, int]]:
        """``(prefix, namespace, live masters)`` of other namespaces of this Redis where masters
        run. Best effort: a few SCAN calls; a user whose ACL forbids them gets ``[]``."""
        found: list[tuple[str, str, int]] = []
        cutoff = redis_ms(self.redis) - STALE_MS
        scans = 0
        try:
            for node in self._nodes():
                cursor = None
                while cursor != 0 and scans < max_scans:
                    cursor, keys = node.scan(cursor or 0, match="*:{*}:masters", count=1000)
                    scans += 1
                    for raw in keys:
                        key = raw.decode("utf-8", "replace")
                        if key == self.keys.masters:
                            continue
                        live = self.redis.zcount(key, cutoff, "+inf")
                        prefix, _, rest = key.partition(":{")
                        if live and rest.endswith("}:masters"):
                            found.append((prefix, rest[: -len("}:masters")], live))
        except redis.exceptions.RedisError:
            return []
        return sorted(found)

    def _nodes(self) -> list[Any]:
        """What SCAN walks: the one server, or each primary of a Redis Cluster (SCAN is per node)."""
        if isinstance(self.redis, redis.RedisCluster):
            return [self.redis.get_redis_connection(n) for n in self.redis.get_primaries()]
        return [self.redis]

    def targets(self, master: str | None, all_: bool) -> list[str]:
        live = [m["id"] for m in self.masters()]
        if master:
            if master not in live:
                known = ", ".join(live) or "none"
                raise NoSuchMaster(f"no running master {master!r} (running: {known})")
            return [master]
        if not live:
            raise NoSuchMaster(
                "no master is running in this namespace; start one with `task-worker worker`"
            )
        if all_ or len(live) == 1:
            return live
        raise NoSuchMaster(
            f"{len(live)} masters are running ({', '.join(live)}); pass --master ID or --all"
        )

    def send(
        self, master: str, cmd: str, args: dict[str, Any] | None = None, timeout: float = 5.0
    ) -> Reply:
        req = uuid.uuid4().hex
        body = json.dumps({"id": req, "cmd": cmd, "args": args or {}})
        pipe = self.redis.pipeline(transaction=False)
        pipe.rpush(self.keys.control(master), body)
        pipe.expire(self.keys.control(master), 300)
        pipe.execute()
        deadline = time.monotonic() + timeout
        got = None
        while got is None and (left := deadline - time.monotonic()) > 0:
            got = self.redis.blpop([self.keys.reply(req)], timeout=max(min(left, MAX_BLOCK), 0.01))
        if got is None:
            # Withdraw the command if it was never picked up, so it cannot run much later.
            self.redis.lrem(self.keys.control(master), 1, body)
            raise ReplyTimeout(
                f"master {master} did not answer {cmd!r} within {timeout:g}s; is it stopped "
                "(SIGSTOP) or cut off from Redis? Check `tqctl status`."
            )
        reply = json.loads(got[1])
        return Reply(
            master, bool(reply.get("ok")), reply.get("message", ""), reply.get("data") or {}
        )
