"""Every Redis key taskqueue uses, built in one place (see ``lua/README.md`` for the schema).

All keys of a namespace share the hash tag ``{namespace}``, so every script touches one hash slot
and runs unchanged on Redis Cluster.
"""

from __future__ import annotations

import re

QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class Keys:
    """Key names of one namespace, e.g. ``tq:{default}:q:high_priority``."""

    __slots__ = (
        "prefix",
        "namespace",
        "base",
        "stats",
        "queues",
        "paused",
        "dead",
        "tombs",
        "masters",
        "registered",
        "autoscaler_log",
        "alerts",
        "schedules",
        "due",
        "schema",
    )

    def __init__(self, prefix: str = "tq", namespace: str = "default") -> None:
        if not QUEUE_NAME_RE.match(namespace) or not QUEUE_NAME_RE.match(prefix):
            raise ValueError(f"bad key prefix or namespace: {prefix!r}, {namespace!r}")
        self.prefix, self.namespace = prefix, namespace
        #: Prefix of every key of the namespace, hash tag included.
        self.base = f"{prefix}:{{{namespace}}}:"
        self.stats = self.base + "stats"
        self.queues = self.base + "queues"
        self.paused = self.base + "paused"
        self.dead = self.base + "dead"
        #: Queue -> how many cancelled ids its ready list still holds (tombstones: a cancel
        #: leaves the id in the list, O(1); fetch and purge drop it when they pop it).
        self.tombs = self.base + "tombs"
        #: Tasks each live master / standalone worker can run (``taskqueue/registered.py``).
        self.registered = self.base + "registered"
        self.masters = self.base + "masters"
        self.autoscaler_log = self.base + "autoscaler:log"
        #: Alert key -> first seen (ms), kept by the HTTP API (``taskqueue/web/context.py``).
        self.alerts = self.base + "alerts"
        #: Names of every periodic schedule, and name -> next slot of the unpaused ones.
        self.schedules = self.base + "schedules"
        self.schema = self.base + "schema"
        self.due = self.base + "schedules:due"

    def job(self, job_id: str) -> str:
        return self.base + "job:" + job_id

    def done(self, job_id: str) -> str:
        return self.base + "done:" + job_id

    def idem(self, key: str) -> str:
        return self.base + "idem:" + key

    def ready(self, queue: str) -> str:
        return self.base + "q:" + queue

    def scheduled(self, queue: str) -> str:
        return self.base + "s:" + queue

    def active(self, queue: str) -> str:
        return self.base + "a:" + queue

    def wake(self, queue: str) -> str:
        return self.base + "w:" + queue

    def held(self, worker: str) -> str:
        return self.base + "held:" + worker

    def halt(self, worker: str) -> str:
        """The list a worker pushes to end its own blocking wait (``fetch.lua``, ARGV[8])."""
        return self.base + "halt:" + worker

    def schedule(self, name: str) -> str:
        return self.base + "sched:" + name

    def stats_minute(self, minute: int) -> str:
        return f"{self.stats}:{minute}"

    def master(self, master_id: str) -> str:
        return self.base + "master:" + master_id

    def control(self, master_id: str) -> str:
        return self.base + "ctl:" + master_id

    def reply(self, request_id: str) -> str:
        return self.base + "reply:" + request_id

    def autoscaler_claim(self, direction: str) -> str:
        return self.base + "autoscaler:claim:" + direction
