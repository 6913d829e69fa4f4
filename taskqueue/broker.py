"""Typed calls of the Lua scripts: each method builds one script call and says how to read the
answer. Pure (no I/O), so the sync client, the asyncio client, the worker and the master all
share it and run the calls with their own connection (see ``runner.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hiredis import pack_command

from .keys import Keys

#: Longest a lease lasts without an extension (ms). The holder extends it every third of this.
DEFAULT_LEASE_MS = 30_000
#: Times a job may lose its worker before it goes to the dead letter as "worker lost".
DEFAULT_MAX_STALLS = 3
#: Dead-letter retention: most entries, and oldest entry (ms).
DEFAULT_DEAD_MAX = 10_000
DEFAULT_DEAD_AGE_MS = 7 * 24 * 3600 * 1000
#: How long an idempotency key keeps returning its first job (ms).
DEFAULT_IDEM_TTL_MS = 24 * 3600 * 1000
#: Scheduled jobs promoted per queue per fetch, and expired leases recovered per queue per call.
#: Both sized so that one call stays well under 5 ms of Redis time even with millions of jobs
#: waiting (bench/huge_queues.py, docs/reliability.md "Huge queues").
PROMOTE_BATCH = 250
RECOVER_BATCH = 250
#: Popped ids one fetch may drop without leasing them (tombstones of cancelled jobs, expired or
#: corrupt jobs) before it returns short; a run of a million cancelled jobs is crossed in
#: bounded steps, never in one call.
SKIP_BATCH = 250
#: Jobs one purge, dead-retry or dead-delete call handles; callers loop until it returns 0, so
#: a purge of millions never holds Redis for more than one small batch at a time.
CONTROL_BATCH = 100


def _purged(raw: list) -> tuple[int, int]:
    """purge's reply: (jobs purged, ids taken from the queue: purged + tombstones dropped)."""
    return int(raw[0]), int(raw[1])


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _enqueued(raw: list) -> list[tuple[str, bool]]:
    """enqueue's reply: (job id, whether it existed already) per job."""
    return [(_s(raw[i]), bool(raw[i + 1])) for i in range(0, len(raw), 2)]


@dataclass(frozen=True, slots=True)
class Call:
    """One script invocation and how to turn its reply into a Python value."""

    script: str
    keys: list[str]
    args: list[Any]
    parse: Callable[[Any], Any]
    #: The whole EVALSHA already in the wire format (RESP), for a runner that writes to a
    #: connection itself; byte for byte what packing ``keys`` and ``args`` gives. None: pack.
    packed: bytes | None = None


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job ready to enqueue: everything the enqueue script stores."""

    id: str
    task: str
    queue: str
    payload: bytes
    max_retries: int
    timeout_ms: int
    delay_ms: int
    at_ms: int
    key: str | None
    dead_letter: bool
    ttl_ms: int
    #: Discard the job if no worker started it within this many ms of enqueue (0 = never).
    expires_ms: int = 0


@dataclass(slots=True)
class Leased:
    """A job handed to a worker by fetch."""

    id: str
    task: str
    queue: str
    payload: bytes
    attempts: int
    failures: int
    max_retries: int
    timeout_ms: int
    wait_ms: int
    token: str
    #: Times its worker died while it ran: > 0 makes it a suspect, run alone (poison isolation).
    stalls: int = 0


@dataclass(frozen=True, slots=True)
class FetchResult:
    now_ms: int
    next_due_ms: int
    jobs: list[Leased]


#: Shapes of single enqueues (task, queue and task options) whose packing a Broker keeps.
MAX_PACKERS = 256


def resp_bulk(value: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


def resp_bulks(words: Sequence[Any]) -> bytes:
    """``words`` as consecutive RESP bulk strings, encoded by hiredis (the packer every plain
    command goes through, ``connection._BlockMemo``) without its ``*<count>`` header."""
    if not words:
        return b""
    packed = pack_command(tuple(words))
    return packed[packed.index(b"\r\n") + 2 :]


class EnqueuePacker:
    """The EVALSHA of ``enqueue_now`` (one job queued now: no key, delay, time or expiry) in wire
    format, from a template of one shape (task, queue, task options) with three holes: the job
    key, the id and the payload. The single enqueue is the call a producer makes most; this
    packs it in a few joins instead of encoding its arguments one by one
    (``tests/test_enqueue_packing.py``)."""

    #: Places of the holes in ``enqueue_now``'s keys and args (see ``Broker._enqueue_now``).
    JOB_KEY, ID, PAYLOAD = 2, 0, 3

    def __init__(self, sample: Call) -> None:
        from .scripts import sha

        self.sample = sample
        keys, args = sample.keys, sample.args
        nk = len(keys)
        words = ["EVALSHA", sha(sample.script), nk, *keys, *args]
        holes = [3 + self.JOB_KEY, 3 + nk + self.ID, 3 + nk + self.PAYLOAD]
        parts, start = [], 0
        for hole in holes:
            parts.append(resp_bulks(words[start:hole]))
            start = hole + 1
        parts.append(resp_bulks(words[start:]))
        parts[0] = b"*%d\r\n" % len(words) + parts[0]
        self.parts = parts
        self.job_prefix = keys[self.JOB_KEY].removesuffix(args[self.ID])

    @staticmethod
    def fits(job: NewJob) -> bool:
        """Whether ``job`` has this packing's shape: no key, no delay, no time, no expiry."""
        return not (job.key or job.delay_ms or job.at_ms or job.expires_ms)

    def call(self, job: NewJob) -> Call:
        """The enqueue call of ``job`` (of this packer's shape), packed."""
        s, p = self.sample, self.parts
        job_key = self.job_prefix + job.id
        keys, args = s.keys.copy(), s.args.copy()
        keys[self.JOB_KEY] = job_key
        args[self.ID], args[self.PAYLOAD] = job.id, job.payload
        packed = b"".join((p[0], resp_bulk(job_key.encode()), p[1], resp_bulk(job.id.encode()),
                           p[2], resp_bulk(job.payload), p[3]))  # fmt: skip
        return Call(s.script, keys, args, s.parse, packed)


class Broker:
    """Builds script calls for one namespace."""

    def __init__(
        self,
        keys: Keys,
        *,
        lease_ms: int = DEFAULT_LEASE_MS,
        max_stalls: int = DEFAULT_MAX_STALLS,
        dead_max: int = DEFAULT_DEAD_MAX,
        dead_age_ms: int = DEFAULT_DEAD_AGE_MS,
        idem_ttl_ms: int = DEFAULT_IDEM_TTL_MS,
    ) -> None:
        self.keys = keys
        self.lease_ms = lease_ms
        self.max_stalls = max_stalls
        self.dead_max = dead_max
        self.dead_age_ms = dead_age_ms
        self.idem_ttl_ms = idem_ttl_ms
        self._packers: dict[tuple, EnqueuePacker] = {}

    # -- producers -------------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob]) -> Call:
        if len(jobs) == 1 and EnqueuePacker.fits(jobs[0]):
            j = jobs[0]
            shape = (j.task, j.queue, j.max_retries, j.timeout_ms, j.dead_letter, j.ttl_ms)
            packer = self._packers.get(shape)
            if packer is None:
                if len(self._packers) >= MAX_PACKERS:
                    self._packers.clear()
                packer = self._packers[shape] = EnqueuePacker(self._enqueue_now(j))
            return packer.call(j)
        return self._enqueue(jobs)

    def _enqueue_now(self, j: NewJob) -> Call:
        """One job of ``EnqueuePacker``'s shape, by ``enqueue_now``: what ``_enqueue([j])``
        does, in fewer arguments."""
        k = self.keys
        keys = [k.stats, k.queues, k.job(j.id), k.ready(j.queue), k.wake(j.queue)]
        args = [j.id, j.task, j.queue, j.payload, j.max_retries, j.timeout_ms,
                1 if j.dead_letter else 0, j.ttl_ms]  # fmt: skip
        return Call("enqueue_now", keys, args, _enqueued)

    def _enqueue(self, jobs: Sequence[NewJob]) -> Call:
        k = self.keys
        keys = [k.stats, k.queues]
        args: list[Any] = [len(jobs), self.idem_ttl_ms]
        for j in jobs:
            keys += [
                k.job(j.id),
                k.ready(j.queue),
                k.scheduled(j.queue),
                k.wake(j.queue),
                k.idem(j.key) if j.key else k.job(j.id),
            ]
            args += [
                j.id,
                j.task,
                j.queue,
                j.payload,
                j.max_retries,
                j.timeout_ms,
                j.delay_ms,
                j.at_ms,
                1 if j.key else 0,
                1 if j.dead_letter else 0,
                j.ttl_ms,
                j.expires_ms,
            ]

        return Call("enqueue", keys, args, _enqueued)

    # -- workers ---------------------------------------------------------------------------
    def fetch(self, queues: Sequence[str], n: int, token: str, worker: str,
              halt: bool = False) -> Call:  # fmt: skip
        """``halt``: sent behind a blocking wait that also watches ``keys.halt(worker)``."""
        k = self.keys
        keys = [k.paused, k.stats, k.tombs]
        for q in queues:
            keys += [k.ready(q), k.scheduled(q), k.active(q), k.wake(q)]
        args = [n, self.lease_ms, token, worker, k.base, PROMOTE_BATCH, SKIP_BATCH,
                "1" if halt else "", *queues]  # fmt: skip

        def parse(raw: list) -> FetchResult:
            jobs = [
                Leased(
                    _s(raw[i]),
                    _s(raw[i + 1]),
                    _s(raw[i + 2]),
                    raw[i + 3],
                    raw[i + 4],
                    raw[i + 5],
                    raw[i + 6],
                    raw[i + 7],
                    raw[i + 8],
                    token,
                    raw[i + 9],
                )
                for i in range(2, len(raw), 10)
            ]
            return FetchResult(raw[0], raw[1], jobs)

        return Call("fetch", keys, args, parse)

    def ack(self, done: Sequence[tuple[Leased, bytes]]) -> Call:
        k = self.keys
        keys = [k.stats]
        args: list[Any] = []
        for job, result in done:
            keys += [k.job(job.id), k.active(job.queue), k.done(job.id)]
            args += [job.token, result]
        return Call("ack", keys, args, lambda raw: [bool(x) for x in raw])

    def fail(
        self, job: Leased, error: str, traceback: str, retry_ms: int, *, retry: bool = True
    ) -> Call:
        k = self.keys
        keys = [
            k.job(job.id),
            k.active(job.queue),
            k.scheduled(job.queue),
            k.dead,
            k.stats,
            k.done(job.id),
            k.wake(job.queue),
        ]
        args = [
            job.token,
            error,
            traceback,
            retry_ms,
            "retry" if retry else "dead",
            self.dead_max,
            self.dead_age_ms,
            k.base,
        ]
        return Call("fail", keys, args, _s)

    def extend(self, jobs: Sequence[tuple[str, str, str]]) -> Call:
        """Renew leases of (job id, queue, token) triples; returns (lost ids, cancelled ids)."""
        k = self.keys
        keys: list[str] = []
        args: list[Any] = [self.lease_ms]
        for job_id, queue, token in jobs:
            keys += [k.job(job_id), k.active(queue)]
            args += [job_id, token]

        def parse(raw: list) -> tuple[list[str], list[str]]:
            return [_s(x) for x in raw[0]], [_s(x) for x in raw[1]]

        return Call("extend", keys, args, parse)

    def release(
        self, jobs: Sequence[tuple[str, str, str]], *, stalled: bool = False, reason: str = ""
    ) -> Call:
        """Give (job id, queue, token) triples back to their queues."""
        k = self.keys
        keys = [k.dead, k.stats]
        args = self._stall_args(stalled, reason)
        for job_id, queue, token in jobs:
            keys += [k.job(job_id), k.active(queue), k.ready(queue), k.wake(queue)]
            args += [job_id, token]
        return Call("release", keys, args, int)

    def release_worker(
        self, worker: str, *, stalled: bool = True, reason: str = "", limit: int = 1000
    ) -> Call:
        """Give back every job worker ``worker`` still holds (it died, or exited)."""
        k = self.keys
        keys = [k.dead, k.stats, k.held(worker)]
        return Call("release_worker", keys, [*self._stall_args(stalled, reason), limit], int)

    def _stall_args(self, stalled: bool, reason: str) -> list[Any]:
        """ARGV[1..6] shared by release and release_worker (the stall include's settings)."""
        return [
            1 if stalled else 0,
            self.max_stalls,
            reason or "worker lost",
            self.dead_max,
            self.dead_age_ms,
            self.keys.base,
        ]

    def recover(self, queues: Sequence[str]) -> Call:
        k = self.keys
        keys = [k.dead, k.stats]
        for q in queues:
            keys += [k.active(q), k.ready(q), k.wake(q)]
        args = [k.base, RECOVER_BATCH, self.max_stalls, self.dead_max, self.dead_age_ms]

        def parse(raw: list) -> dict[str, int]:
            return {"requeued": raw[0], "dead": raw[1], "cancelled": raw[2]}

        return Call("recover", keys, args, parse)

    # -- control -----------------------------------------------------------------------------
    def cancel(self, job_id: str, queue: str) -> Call:
        k = self.keys
        keys = [k.job(job_id), k.tombs, k.scheduled(queue), k.stats, k.done(job_id)]
        return Call("cancel", keys, [], _s)

    def pause(self, queue: str) -> Call:
        return Call("pause", [self.keys.paused, self.keys.queues], [queue], bool)

    def resume(self, queue: str) -> Call:
        k = self.keys
        return Call("resume", [k.paused, k.ready(queue), k.wake(queue)], [queue], bool)

    def purge(self, queue: str, limit: int = CONTROL_BATCH) -> Call:
        k = self.keys
        keys = [k.ready(queue), k.scheduled(queue), k.stats, k.tombs]
        return Call("purge", keys, [k.base, limit, queue], _purged)

    def dead_retry(self, ids: Sequence[str] = (), limit: int = CONTROL_BATCH) -> Call:
        k = self.keys
        return Call("dead_retry", [k.dead, k.queues], [k.base, limit, *ids], int)

    def dead_delete(self, ids: Sequence[str] = (), limit: int = CONTROL_BATCH) -> Call:
        return Call("dead_delete", [self.keys.dead], [self.keys.base, limit, *ids], int)

    def watch(self, job_id: str) -> Call:
        return Call("watch", [self.keys.job(job_id)], [], lambda raw: raw)

    def schema_check(self, version: int, min_compatible: int, by: str) -> Call:
        """Agree on the namespace's schema version (``taskqueue.schema``); returns
        ``(ok, stored_version, stored_min_compatible)``."""

        def parse(raw: list) -> tuple[bool, int, int]:
            return _s(raw[0]) == "ok", int(raw[1]), int(raw[2])

        return Call("schema_check", [self.keys.schema], [version, min_compatible, by], parse)

    def autoscale_claim(
        self, master: str, direction: str, claim_ms: int, record: str, log_max: int = 100
    ) -> Call:
        """Claim a scaling step namespace-wide (``claim_ms`` 0: only log it). The reply is
        ``(granted, holder, ms_left)``."""
        keys = [self.keys.autoscaler_claim(direction), self.keys.autoscaler_log]

        def parse(raw: list) -> tuple[bool, str, int]:
            return bool(raw[0]), _s(raw[1]), int(raw[2])

        return Call("autoscale_claim", keys, [master, claim_ms, record, log_max], parse)
