"""Cluster resharding under load: ``redis-cli --cluster reshard`` moves 500 slots, the
namespace's among them, from one primary to another while producers enqueue and a master's
workers run jobs. Nothing acknowledged is lost, and every extra run falls in the migration.

What a migration does to taskqueue: every key of a namespace shares one hash tag, so the
namespace is one slot, and every step is one Lua script over keys of that slot. While the slot
migrates its keys are split between the two nodes: a script whose keys are all still on the
source runs there, one whose keys have all left is sent on with ASK, and one whose keys are
split (or that creates a key while others still exist: every enqueue) gets TRYAGAIN until the
slot is settled. redis-py follows MOVED and ASK and retries TRYAGAIN 16 times (about 0.4 s),
then raises ``ClusterError("TTL exhausted.")``; the acknowledged enqueue sends EVALSHA + WAIT
to one node itself and sees ASK and TRYAGAIN raw. All of these are an outage: the script did
not run. Workers back off and keep their leases; producers get RedisUnavailable and retry with
the same idempotency key. (They used to get a plain BrokerError, and the master and workers
logged "unexpected error ... please report it": see ``redis_errors.classify``.)

The namespace's slot also holds 50,000 other keys (a big namespace), so that its migration
outlasts redis-py's retries, and each moving slot 20 more, so that MIGRATE has work in every
slot. The test runs on its own ``LocalCluster`` (3 primaries, 1 replica each, equal slot
ranges) rather than the session one: ``redis-cli`` moves the lowest slots of the source first,
and the default layout puts our slot (5718, ``tq:{default}:``) 258th of its owner's 5461-10921,
so 500 slots include it with moves before and after it; other tests change the session
cluster's layout with ``LocalCluster.move_slot``.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from redis.cluster import key_slot

from taskqueue import TaskQueue
from taskqueue.connection import RedisSettings
from taskqueue.errors import TaskQueueError
from taskqueue.testing import wait_for
from taskqueue.testing.cluster import LocalCluster
from taskqueue.testing.ledger import Ledger, check_ledger
from tests import tasks_faults  # noqa: F401 - registers the ledger tasks

pytestmark = pytest.mark.slow
TASKS = "tests.tasks_faults"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"  # Debian: redis-tools
NS_KEY = "tq:{default}:"
SLOTS_MOVED = 500
FILLER_PER_SLOT = 20  # other applications' keys in each moving slot: MIGRATE has work to do
#: Keys beside the namespace's own in its slot (a big namespace): its migration lasts a while.
NS_FILLER = 50_000


class Producer(threading.Thread):
    """Enqueues continuously with idempotency keys; an enqueue that raises is retried with
    the same key (the first job if it went in, a new one if it did not)."""

    def __init__(self, tq: TaskQueue, name: str) -> None:
        super().__init__(daemon=True, name=name)
        self.tq, self.acked = tq, []
        self.errors: collections.Counter[str] = collections.Counter()  # by exception class
        self.texts: dict[str, str] = {}  # one message of each class
        self.stop = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            try:
                job = self.tq.enqueue_with("ledger.sleep", (0.002, i), key=f"{self.name}-{i}")
            except TaskQueueError as exc:  # unavailable, not replicated, ...: same key again
                self.errors[type(exc).__name__] += 1
                self.texts.setdefault(type(exc).__name__, str(exc)[:160])
                self.stop.wait(0.05)
                continue
            self.acked.append(job)
            i += 1


def owned_slots(cluster: LocalCluster, port: int) -> set[int]:
    """The slots the primary on ``port`` says it owns."""
    with cluster.node(port).client() as c:
        ranges = c.execute_command("CLUSTER", "SLOTS")
    return {s for lo, hi, primary, *_ in ranges if int(primary[1]) == port
            for s in range(lo, hi + 1)}  # fmt: skip


def fill(cluster: LocalCluster, slots: list[int]) -> int:
    """Write ``FILLER_PER_SLOT`` small keys into each of ``slots``; returns how many."""
    tags: dict[int, str] = {}
    i = 0
    while len(tags) < len(slots):
        tag, i = f"fill{i}", i + 1
        slot = key_slot(f"{{{tag}}}".encode())
        if slot in slots:
            tags.setdefault(slot, tag)
    client = cluster.client()
    pipe = client.pipeline()
    for tag in tags.values():
        for j in range(FILLER_PER_SLOT):
            pipe.set(f"{{{tag}}}:{j}", "x" * 64)
    for j in range(NS_FILLER):
        pipe.set(f"app:{{default}}:{j}", "x" * 64)
    pipe.execute()
    client.close()
    return len(tags) * FILLER_PER_SLOT + NS_FILLER


class SlotWatch(threading.Thread):
    """Seconds for which ``slot`` was open (MIGRATING) on the source node, polled every 10 ms."""

    def __init__(self, cluster: LocalCluster, port: int, slot: int) -> None:
        super().__init__(daemon=True)
        self.client, self.mark = cluster.node(port).client(), f"[{slot}->-"
        self.first: float | None = None
        self.last: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.01):
            mine = next(ln for ln in self.client.execute_command("CLUSTER", "NODES").decode()
                        .splitlines() if "myself" in ln)  # fmt: skip
            if self.mark in mine:
                self.last = time.monotonic()
                self.first = self.first or self.last
        self.client.close()

    @property
    def seconds(self) -> float | None:
        return None if self.first is None else round(self.last - self.first, 2)  # type: ignore[operator]


def reshard(cluster: LocalCluster, src: int, dst: int, n: int, log: Path) -> None:
    """``redis-cli --cluster reshard``: move the ``n`` lowest slots of ``src`` to ``dst``."""
    cmd = [REDIS_CLI, "--cluster", "reshard", f"127.0.0.1:{src}",
           "--cluster-from", cluster.ids[src], "--cluster-to", cluster.ids[dst],
           "--cluster-slots", str(n), "--cluster-yes"]  # fmt: skip
    with open(log, "ab") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=120, check=False)
    assert done.returncode == 0, f"redis-cli reshard failed:\n{log.read_text()[-2000:]}"


def test_reshard_of_500_slots_under_load(masters, tmp_path: Path) -> None:
    with LocalCluster() as cluster:
        src = cluster.primary_of(NS_KEY).port
        dst = next(n.port for n in cluster.nodes[: cluster.primaries] if n.port != src)
        ours = key_slot(NS_KEY.encode())
        moving = sorted(owned_slots(cluster, src))[:SLOTS_MOVED]
        assert ours in moving, f"slot {ours} is not among the {SLOTS_MOVED} lowest of its owner"
        filler = fill(cluster, moving)

        ledger = Ledger(tmp_path / "ledger.jsonl")
        env = {**ledger.env(), "TASKQUEUE_WORKERS__LEASE_SECONDS": "3"}
        m = masters(cluster.url, "-w", "2", env=env, imports=TASKS)
        pids = set(m.wait_workers(2, timeout=60))
        # Both enqueue paths: plain (redis-py's redirections), and acknowledged (EVALSHA + WAIT
        # on one connection of the slot's owner, taskqueue's own redirection handling).
        plain = TaskQueue(cluster.url)
        acked = TaskQueue(RedisSettings(cluster.url, min_replicas_acked=1,
                                        replica_ack_timeout=5.0))  # fmt: skip
        producers = [Producer(plain, "plain"), Producer(acked, "acked")]
        for p in producers:
            p.start()

        def enqueued() -> int:
            return sum(len(p.acked) for p in producers)

        wait_for(lambda: enqueued() > 400 and len(ledger.runs()) > 200, 60, "enqueues and runs")
        before = enqueued()
        watch = SlotWatch(cluster, src, ours)
        watch.start()
        started = time.monotonic()
        with ledger.fault_window("reshard"):
            reshard(cluster, src, dst, SLOTS_MOVED, tmp_path / "reshard.log")
        seconds = time.monotonic() - started
        watch.stop.set()
        watch.join(10)
        during = enqueued() - before
        at_end = enqueued()
        wait_for(lambda: enqueued() > at_end + 300, 60, "enqueues to go on after the reshard")
        for p in producers:
            p.stop.set()
            p.join(30)

        assert owned_slots(cluster, dst) >= set(moving), "not every slot moved"
        assert not owned_slots(cluster, src) & set(moving)
        assert cluster.primary_of(NS_KEY).port == dst
        with cluster.node(dst).client() as c:
            assert c.execute_command("CLUSTER", "COUNTKEYSINSLOT", ours) > 0
        ids = [j for p in producers for j in p.acked]
        wait_for(lambda: not sum(q["queued"] + q["active"] + q["scheduled"]
                                 for q in plain.queue_lengths().values()),
                 60, "every job to finish")  # fmt: skip
        report = check_ledger(plain.redis, ids, ledger)  # one place each, reruns excused
        assert report.places == {"succeeded": len(ids)}, report.places
        for p in producers:
            assert len(set(p.acked)) == len(p.acked), f"{p.name}: a retry made a second job"
        assert set(m.worker_pids()) == pids, "a worker was replaced during the reshard"
        assert m.stop(timeout=60) == 0
        log = m.log()
        outcome = {
            "jobs": len(ids), "runs": report.runs, "duplicates": report.runs - len(ids),
            "excused": len(report.excused), "enqueued_during_reshard": during,
            "enqueue_retries": {p.name: dict(p.errors) for p in producers},
            "slots_moved": len(moving), "filler_keys": filler,
            "reshard_seconds": round(seconds, 2), "our_slot_open_seconds": watch.seconds,
            "outages_logged": log.count("lost Redis"),
            "outage_seconds": re.findall(r"Redis is back after ([\d.]+)s", log),
        }  # fmt: skip
        print(f"reshard outcome: {outcome}")
        for p in producers:
            for text in p.texts.values():
                print(f"  {p.name} producer: {text}")
        assert report.runs - len(ids) == len(report.excused)
        # A slot in migration is an outage (retry later), not an error to report: producers
        # see RedisUnavailable (safe to retry), the master and workers back off and go on.
        retryable = {"RedisUnavailable", "NotReplicated"}
        for p in producers:
            assert set(p.errors) <= retryable, f"{p.name}: {p.texts}"
        assert "please report it" not in log, log[-3000:]
        plain.close()
        acked.close()
