"""Periodic schedules, fired from the master's loop when it runs with ``--enable-scheduler``.

Duties:
1. ``sync`` (first pass, and after a reload): make the schedules in Redis exactly this master's
   (code and config), keeping the state of unchanged ones, so slots missed while every master
   was down are seen as misfires.
2. ``next_due``: the loop sleeps until the earliest next slot Redis knows, converted from Redis
   time to this host's monotonic clock (at most ``MAX_SLEEP``, the safety net for a schedule
   another host added; ``wake`` cuts the sleep short when tqctl resumes a schedule).
3. ``tick``: read Redis time, then the due schedules, ``plan`` each (misfire policy), and apply
   the steps through ``schedule_fire`` (one pipelined round trip). Several masters may do this
   at once: the script's compare-and-set lets exactly one step per slot land.
Redis outages: every call goes through ``RedisGuard``; a failed pass is retried a second later.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..connection import time_ms
from ..keys import Keys
from ..schedules.calls import Fired, ScheduleCalls
from ..schedules.collect import collect
from ..schedules.model import spec_of
from ..schedules.plan import plan
from .redisguard import RedisGuard

log = logging.getLogger("taskqueue.master")
#: Longest sleep between two looks at the schedules (s), whatever the next slot.
MAX_SLEEP = 60.0
#: After a failed pass (Redis down), or a pass that could apply nothing.
RETRY = 1.0
#: Due schedules read per pass; more are handled by the next pass, at once.
BATCH = 100
_FIELDS = ("digest", "kind", "cron", "tz", "every_ms", "misfire", "queue")


def schedule_records(cfg: Any) -> dict[str, dict[str, Any]]:
    """This master's schedules (code and config) as Redis records; ConfigError if one is bad."""
    return collect(cfg.schedules, cfg.limits.max_payload_bytes)


def keeper_for(cfg: Any, redis: RedisGuard, keys: Keys) -> PeriodicKeeper | None:
    """The master's keeper with ``--enable-scheduler``; None (saying so) without it."""
    records = schedule_records(cfg)
    if cfg.scheduler.enabled:
        return PeriodicKeeper(redis, keys, records, cfg.scheduler.misfire_grace)
    if records:
        log.info("%d periodic schedule(s) declared (%s); this master does not fire them: "
                 "start one with --enable-scheduler", len(records), ", ".join(records))  # fmt: skip
    return None


class PeriodicKeeper:
    def __init__(self, redis: RedisGuard, keys: Keys, records: dict[str, dict[str, Any]],
                 grace_s: float) -> None:  # fmt: skip
        self.redis = redis
        self.keys = keys
        self.calls = ScheduleCalls(keys)
        self.records = records
        self.grace_ms = int(grace_s * 1000)
        self.synced = False
        self.next_at = time.monotonic()
        self.fired = 0

    def next_due(self) -> float:
        return self.next_at

    def wake(self) -> None:
        self.next_at = time.monotonic()

    def tick(self, now: float) -> None:
        if now < self.next_at:
            return
        self.next_at = now + RETRY
        if not self.synced and not self._sync():
            return
        sleep = self._pass()
        if sleep is not None:
            self.next_at = time.monotonic() + sleep

    def _sync(self) -> bool:
        t = self.redis.call(self.redis.client.time)
        if t is None:
            return False
        now_ms = time_ms(t)
        firsts = {n: (rec, spec_of(rec).next_after(now_ms)) for n, rec in self.records.items()}
        res = self.redis.script(self.calls.sync(firsts))
        if res is None:
            return False
        self.synced = True
        log.info("scheduler: %d schedule(s): %s", len(self.records),
                 ", ".join(f"{k} {v}" for k, v in res.items()))  # fmt: skip
        return True

    def _read_due(self) -> tuple[int, list[tuple[str, int]], float] | None:
        def go() -> list[Any]:
            # TIME alone: a Redis Cluster pipeline refuses keyless commands.
            return [self.redis.client.time(),
                    self.redis.client.zrange(self.keys.due, 0, BATCH - 1, withscores=True)]  # fmt: skip

        got = self.redis.call(go)
        if got is None:
            return None
        reply, entries = got
        now_ms = time_ms(reply)
        due = [(n.decode(), int(s)) for n, s in entries if s <= now_ms]
        later = [s for _, s in entries if s > now_ms]
        return now_ms, due, later[0] if later else -1

    def _pass(self) -> float | None:
        """One look at the schedules; seconds to sleep after it, or None to retry soon."""
        read = self._read_due()
        if read is None:
            return None
        now_ms, due, earliest = read
        if not due:
            return self._sleep(now_ms, earliest)
        recs = self.redis.call(lambda: self._records([n for n, _ in due]))
        if recs is None:
            return None
        calls = []
        for (name, stored), rec in zip(due, recs, strict=True):
            if rec.get("digest"):
                steps = plan(spec_of(rec), stored, now_ms, self.grace_ms, rec["misfire"])
                calls += [self.calls.fire(name, rec["digest"], rec["queue"], s) for s in steps]
        if not calls:
            return RETRY
        results: list[Fired] | None = self.redis.call(lambda: self.redis.run.pipeline(calls))
        if results is None:
            return None
        self._log(calls, results)
        last = results[-1]
        applied = any(r.status in ("fired", "skipped") for r in results)
        if not applied and last.earliest_ms <= last.now_ms:
            return RETRY  # nothing could land (a definition changed meanwhile): plan again
        return self._sleep(last.now_ms, last.earliest_ms)

    def _records(self, names: list[str]) -> list[dict[str, str]]:
        pipe = self.redis.client.pipeline(transaction=False)
        for n in names:
            pipe.hmget(self.keys.schedule(n), *_FIELDS)
        return [{k: v.decode() for k, v in zip(_FIELDS, r, strict=True) if v is not None}
                for r in pipe.execute()]  # fmt: skip

    def _log(self, calls: list[Any], results: list[Fired]) -> None:
        for call, r in zip(calls, results, strict=True):
            name, missed = call.args[0], call.args[4]
            if r.status == "fired":
                self.fired += 1
                level = logging.INFO if missed else logging.DEBUG
                log.log(level, "schedule %s fired job %s%s", name, r.job_id,
                        f" (catch-up for {missed} missed slot(s))" if missed else "")  # fmt: skip
            elif r.status == "skipped":
                log.info("schedule %s: skipped %d missed slot(s) (misfire policy skip)", name,
                         missed)  # fmt: skip

    @staticmethod
    def _sleep(now_ms: int, earliest_ms: int) -> float:
        if earliest_ms < 0:
            return MAX_SLEEP
        return min(MAX_SLEEP, max(0.0, (earliest_ms - now_ms + 1) / 1000))
