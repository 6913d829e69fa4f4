"""Leases of every child's jobs, kept by the master (workers run with ``standalone=False``).

Duties:
1. ``extend``: one batched extend call per interval for every job every child reports (split
   into chunks of at most ``CHUNK`` jobs, pipelined); lost and cancelled ids are handed back
   to the child that holds them.
2. ``release``: give a dead (stalled) or killed child's jobs back at once; releases that could
   not reach Redis are kept and retried on the next tick (fencing makes a retry harmless).
   ``release_worker`` then sweeps the child's held set in Redis, which also has the jobs it
   leased but died before reporting.
3. ``recover`` expired leases of the master's queues and ``promote`` due scheduled jobs on
   their timers.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence

from ..broker import Broker
from .redisguard import RedisGuard

log = logging.getLogger("taskqueue.master")
CHUNK = 500
Triple = tuple[str, str, str]


class LeaseKeeper:
    def __init__(self, redis: RedisGuard, broker: Broker, queues: Sequence[str], master_id: str,
                 promote_every: float | None = 1.0) -> None:  # fmt: skip
        self.redis = redis
        self.broker = broker
        self.queues = list(queues)
        self.master_id = master_id
        self.interval = broker.lease_ms / 3000
        self.promote_every = promote_every
        now = time.monotonic()
        self.next_extend = now + self.interval
        self.next_recover = now
        self.next_promote = now if promote_every else float("inf")
        self.pending: list[tuple[list[Triple], bool, str]] = []
        self.pending_workers: list[tuple[str, bool, str]] = []

    def next_due(self) -> float:
        return min(self.next_extend, self.next_recover, self.next_promote)

    def tick(self, held: Callable[[], dict[int, list[Triple]]],
             notify: Callable[[int, list[str], list[str]], None]) -> None:  # fmt: skip
        now = time.monotonic()
        if self.pending or self.pending_workers:
            self._retry_pending()
        if now >= self.next_extend:
            self.next_extend = now + self.interval
            self.extend(held(), notify)
        if now >= self.next_recover:
            self.next_recover = now + self.interval * random.uniform(1.0, 2.0)
            res = self.redis.script(self.broker.recover(self.queues))
            if res and any(res.values()):
                log.warning("recovered expired leases: %s", res)
        if now >= self.next_promote:
            self.next_promote = now + (self.promote_every or float("inf"))
            self.redis.script(self.broker.fetch(self.queues, 0, "", self.master_id))

    def extend(self, by_child: dict[int, list[Triple]],
               notify: Callable[[int, list[str], list[str]], None]) -> None:  # fmt: skip
        owner = {t[0]: pid for pid, triples in by_child.items() for t in triples}
        triples = [t for ts in by_child.values() for t in ts]
        if not triples:
            return
        calls = [self.broker.extend(triples[i : i + CHUNK]) for i in range(0, len(triples), CHUNK)]
        results = self.redis.call(lambda: self.redis.run.pipeline(calls))
        if results is None:
            return
        lost: dict[int, list[str]] = {}
        cancelled: dict[int, list[str]] = {}
        for lost_ids, cancelled_ids in results:
            for i in lost_ids:
                lost.setdefault(owner[i], []).append(i)
            for i in cancelled_ids:
                cancelled.setdefault(owner[i], []).append(i)
        for pid in set(lost) | set(cancelled):
            notify(pid, lost.get(pid, []), cancelled.get(pid, []))

    def release(self, triples: Iterable[Triple], *, stalled: bool, reason: str = "") -> int | None:
        jobs = list(triples)
        if not jobs:
            return 0
        n = 0
        for i in range(0, len(jobs), CHUNK):
            chunk = jobs[i : i + CHUNK]
            res = self.redis.script(self.broker.release(chunk, stalled=stalled, reason=reason))
            if res is None:
                self.pending.append((jobs[i:], stalled, reason))
                return None
            n += res
        return n

    def release_worker(self, worker: str, *, stalled: bool, reason: str = "") -> int | None:
        total = 0
        while True:
            res = self.redis.script(
                self.broker.release_worker(worker, stalled=stalled, reason=reason)
            )
            if res is None:
                self.pending_workers.append((worker, stalled, reason))
                return None
            total += res
            if res < 1000:
                return total

    def _retry_pending(self) -> None:
        pending, self.pending = self.pending, []
        for jobs, stalled, reason in pending:
            self.release(jobs, stalled=stalled, reason=reason)
        workers, self.pending_workers = self.pending_workers, []
        for worker, stalled, reason in workers:
            self.release_worker(worker, stalled=stalled, reason=reason)
