"""The enqueue client: ``TaskQueue`` (sync) and ``AsyncTaskQueue`` (asyncio), same methods.

    tq = TaskQueue("redis://127.0.0.1:6379")
    job_id = tq.enqueue(add, 2, 3)
    tq.result(job_id, timeout=10)   # -> 5, blocking on Redis without polling

Every state change is one Lua script (see ``broker.py``); reads are plain commands.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio

from .broker import Broker, Call, NewJob
from .config import TaskQueueConfig
from .config.schema import BY_PATH
from .connection import MAX_BLOCK, RedisSettings, connect, connect_async
from .errors import ConfigError, JobNotFound, NotReplicated, PartialEnqueue, TaskFailed
from .jobs import JobStatus, check_queue, deadline, make_job, remaining, split_call
from .keys import Keys
from .redact import redact_url
from .redis_errors import wrapping_errors
from .registry import Registry, registry
from .runner import AsyncRunner, SyncRunner
from .serialization import decode_result
from .task import set_default
from .tombstones import waiting

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from .jobs import EnqueueOptions

#: Jobs per enqueue script call in enqueue_many: about 1.2 ms of Redis CPU a call with 10 M jobs
#: waiting (250 took 2.9 ms, and 3 % of those calls passed 5 ms on a loaded machine; see
#: docs/reliability.md "Huge queues").
BATCH = 100
ALL = "all"
#: Outcomes of the cancel script that mean the job is (or will be) cancelled.
CANCELLED = ("cancelled", "requested")
#: Life of a result-wait token list (``done:<id>``) passed on to other waiters (ms).
DONE_TTL_MS = 60_000


class _Base:
    """What both clients share: settings, job preparation and answer decoding."""

    #: The connect function and the script runner of the concrete client.
    _connect: Any = None
    _runner_class: Any = None

    def __init__(
        self,
        url: str | RedisSettings | None = None,
        *,
        namespace: str = "default",
        prefix: str = "tq",
        max_payload: int = BY_PATH["limits.max_payload_bytes"].default,
        registry: Registry = registry,
        client: Any = None,
        broker_options: dict[str, Any] | None = None,
    ) -> None:
        """Connect to ``url`` (default ``$REDIS_URL``, else localhost), or use ``client``.

        ``url`` may be ``RedisSettings`` (pool size, timeouts; see ``taskqueue.connection``).

        ``namespace`` and ``prefix`` pick the keys (``<prefix>:{<namespace>}:...``);
        ``max_payload`` caps an encoded job (bytes); ``broker_options`` tunes leases, stalls,
        dead-letter retention and idempotency windows (see ``Broker``).
        """
        self.settings = RedisSettings.of(url)
        self.url = self.settings.url
        self.keys = Keys(prefix, namespace)
        self.broker = Broker(self.keys, **(broker_options or {}))
        self.max_payload = max_payload
        self.registry = registry
        try:
            self.redis = client or self._connect(self.settings, name="client")
        except ValueError as exc:
            raise ConfigError(f"invalid Redis URL {redact_url(self.settings.url)}: {exc}") from None
        self.run = self._runner_class(self.redis)

    @classmethod
    def from_config(
        cls, config: TaskQueueConfig | str | Path | None = None, *, registry: Registry = registry
    ) -> Self:
        """A client built from the workers' configuration, and made the default client.

        ``config`` is a loaded ``TaskQueueConfig`` or a file path; without it the file is found
        as the CLIs find it (``$TASKQUEUE_CONFIG``, then ``./task-queue.toml``), with the
        environment applied. Uses ``[redis]`` (address, pool, timeouts, prefix, namespace),
        ``limits.max_payload_bytes`` and the lease settings. ``add.delay()`` then enqueues
        through it (see ``set_default``).
        """
        cfg = config if isinstance(config, TaskQueueConfig) else TaskQueueConfig.load(config)
        r, w = cfg.redis, cfg.workers
        tq = cls(
            RedisSettings.from_config(cfg), namespace=r.namespace, prefix=r.key_prefix,
            max_payload=cfg.limits.max_payload_bytes, registry=registry,
            broker_options={"lease_ms": int(w.lease_seconds * 1000), "max_stalls": w.max_stalls},
        )  # fmt: skip
        set_default(tq)
        return tq

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {redact_url(self.url)} namespace={self.keys.base!r}>"

    def _job(self, target: Any, args: Any = (), kwargs: Any = None, **opts: Any) -> NewJob:
        return make_job(self.registry, target, args, kwargs, max_payload=self.max_payload, **opts)

    def _batches(self, calls: Iterable[Any]) -> list[tuple[list[NewJob], Call]]:
        jobs = [self._job(*split_call(c)) for c in calls]
        chunks = [jobs[i : i + BATCH] for i in range(0, len(jobs), BATCH)]
        return [(chunk, self.broker.enqueue(chunk)) for chunk in chunks]

    @staticmethod
    def _committed(batches: list[tuple[list[NewJob], Call]], replies: list[Any]) -> list[str]:
        """The ids of every batch. ``replies`` stops at the first failed batch (an exception):
        then raise PartialEnqueue naming the jobs that went in and those that did not (each
        batch is one script: all of it or none of it)."""
        done = [job_id for reply in replies[:-1] for job_id, _ in reply]
        if replies and isinstance(replies[-1], BaseException):
            missing = [j.id for jobs, _ in batches[len(replies) - 1 :] for j in jobs]
            raise PartialEnqueue(done, missing, replies[-1]) from replies[-1]
        return done + [job_id for reply in replies[-1:] for job_id, _ in reply]

    def _replicated(self, reply: list, acked: int) -> list:
        """Raise NotReplicated when an acknowledged enqueue reached too few replicas."""
        wanted = self.settings.min_replicas_acked
        if acked < wanted:
            ids = [job_id for job_id, _ in reply]
            raise NotReplicated(ids, acked, wanted, self.settings.replica_ack_timeout)
        return reply

    @staticmethod
    def _outcome(job_id: str, raw: list | None) -> tuple[bool, Any]:
        """(finished, value) from a watch reply; raise for failures and unknown jobs."""
        if raw is None:
            raise JobNotFound(f"no job {job_id!r} (never enqueued, or its record expired)")
        state = raw[0].decode()
        if state == "succeeded":
            return True, decode_result(raw[1])
        if state in ("failed", "dead", "cancelled", "expired"):
            err = raw[2].decode("utf-8", "replace") if raw[2] else state
            tb = raw[3].decode("utf-8", "replace") if raw[3] else None
            raise TaskFailed(job_id, state, err, tb)
        return False, None

    def _pass_on(self, pipe: Any, job_id: str) -> Any:
        """Put the finish token back for other waiters, with an expiry (MULTI: both or none)."""
        pipe.lpush(self.keys.done(job_id), "1")
        pipe.pexpire(self.keys.done(job_id), DONE_TTL_MS)
        return pipe

    def _records_pipe(self, ids: list[str]) -> Any:
        pipe = self.redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(self.keys.job(job_id))
        return pipe

    def _lengths_pipe(self, queues: list[str]) -> Any:
        pipe = self.redis.pipeline(transaction=False)
        for q in queues:
            pipe.llen(self.keys.ready(q))
            pipe.zcard(self.keys.scheduled(q))
            pipe.zcard(self.keys.active(q))
        pipe.smembers(self.keys.paused)
        pipe.hgetall(self.keys.tombs)
        return pipe

    @staticmethod
    def _lengths_reply(queues: list[str], replies: list) -> dict:
        *raw, paused, tombs = replies
        out: dict[str, dict[str, int]] = {}
        for i, q in enumerate(queues):
            ready, sched, active = raw[i * 3 : i * 3 + 3]
            out[q] = {
                "queued": waiting(ready, tombs, q),
                "scheduled": sched,
                "active": active,
                "paused": int(q.encode() in paused),
            }
        return out


def _status(job_id: str, rec: dict) -> JobStatus:
    if not rec:
        raise JobNotFound(f"no job {job_id!r} (never enqueued, or its record expired)")
    return JobStatus.from_record(job_id, rec)


def _statuses(ids: list[str], recs: list[dict]) -> list[JobStatus]:
    return [JobStatus.from_record(i, r) for i, r in zip(ids, recs, strict=True) if r]


def _names(raw: Iterable[bytes], sort: bool = True) -> list[str]:
    names = [n.decode() for n in raw]
    return sorted(names) if sort else names


@wrapping_errors
class TaskQueue(_Base):
    """Synchronous client. Thread-safe (redis-py pools its connections)."""

    _connect = staticmethod(connect)
    _runner_class = SyncRunner
    redis: redis.Redis

    def close(self) -> None:
        self.redis.close()

    def __enter__(self) -> TaskQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- enqueue -------------------------------------------------------------------------------
    def enqueue(self, task: Any, *args: Any, **kwargs: Any) -> str:
        """Enqueue ``task(*args, **kwargs)`` on the task's queue; returns the job id."""
        return self._enqueue(self.broker.enqueue([self._job(task, args, kwargs)]))[0][0]

    def enqueue_with(
        self, task: Any, args: tuple | list = (), kwargs: dict | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> str:  # fmt: skip
        """Enqueue with options (``EnqueueOptions``: queue, delay, at, key, max_retries, timeout,
        expires, strict). With a key already used, returns the first job's id."""
        return self._enqueue(self.broker.enqueue([self._job(task, args, kwargs, **options)]))[0][0]

    def enqueue_many(self, calls: Iterable[Any]) -> list[str]:
        """Enqueue many ``(task, args, kwargs)`` calls, one script call per ``BATCH`` (100) jobs, in
        order. If one fails, the rest are not sent and ``PartialEnqueue`` tells which went in."""
        batches = self._batches(calls)
        replies: list[Any] = []
        for _, call in batches:
            try:
                replies.append(self._enqueue(call))
            except redis.RedisError as exc:
                replies.append(exc)
                break
        return self._committed(batches, replies)

    def _enqueue(self, call: Call) -> list:
        if not self.settings.min_replicas_acked:
            return self.run(call)
        s = self.settings
        return self._replicated(*self.run.acked(call, s.min_replicas_acked, s.replica_ack_timeout))

    # -- results and state ---------------------------------------------------------------------
    def result(self, job_id: str, timeout: float | None = None) -> Any:
        """Block until the job finishes; return its value or raise TaskFailed / TimeoutError."""
        until = deadline(timeout)
        while True:
            finished, value = self._outcome(job_id, self.run(self.broker.watch(job_id)))
            if finished:
                return value
            if self.redis.blpop([self.keys.done(job_id)], timeout=remaining(until, MAX_BLOCK)):
                self._pass_on(self.redis.pipeline(), job_id).execute()

    def status(self, job_id: str) -> JobStatus:
        return _status(job_id, self.redis.hgetall(self.keys.job(job_id)))

    def cancel(self, job_id: str) -> bool:
        """Cancel a job that has not finished. Returns False if it had finished or is unknown."""
        queue = self.redis.hget(self.keys.job(job_id), "queue")
        return (
            queue is not None and self.run(self.broker.cancel(job_id, queue.decode())) in CANCELLED
        )

    # -- queues --------------------------------------------------------------------------------
    def pause(self, queue: str) -> bool:
        return self.run(self.broker.pause(check_queue(queue)))

    def resume(self, queue: str) -> bool:
        return self.run(self.broker.resume(check_queue(queue)))

    def purge(self, queue: str) -> int:
        """Cancel every waiting job of a queue (in batches); returns how many."""
        total, taken = 0, 1
        while taken:
            purged, taken = self.run(self.broker.purge(check_queue(queue)))
            total += purged
        return total

    def queues(self) -> list[str]:
        return _names(self.redis.smembers(self.keys.queues))

    def queue_lengths(self) -> dict[str, dict[str, int]]:
        queues = self.queues()
        return self._lengths_reply(queues, self._lengths_pipe(queues).execute())

    # -- dead letter ---------------------------------------------------------------------------
    def dead_letter(self, limit: int = 100) -> list[JobStatus]:
        """The newest ``limit`` dead jobs, newest first."""
        ids = _names(self.redis.zrevrange(self.keys.dead, 0, limit - 1), sort=False)
        return _statuses(ids, self._records_pipe(ids).execute())

    def retry_dead(self, job_id: str = ALL) -> int:
        """Move one dead job (or all) back to its queue with fresh retries; returns how many."""
        if job_id != ALL:
            return self.run(self.broker.dead_retry([job_id]))
        total = 0
        while n := self.run(self.broker.dead_retry()):
            total += n
        return total

    def delete_dead(self, job_id: str = ALL) -> int:
        if job_id != ALL:
            return self.run(self.broker.dead_delete([job_id]))
        total = 0
        while n := self.run(self.broker.dead_delete()):
            total += n
        return total


@wrapping_errors
class AsyncTaskQueue(_Base):
    """asyncio client with the same methods as ``TaskQueue`` (each a coroutine)."""

    _connect = staticmethod(connect_async)
    _runner_class = AsyncRunner
    redis: redis.asyncio.Redis

    async def close(self) -> None:
        await self.redis.aclose()

    async def __aenter__(self) -> AsyncTaskQueue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def enqueue(self, task: Any, *args: Any, **kwargs: Any) -> str:
        return (await self._enqueue(self.broker.enqueue([self._job(task, args, kwargs)])))[0][0]

    async def enqueue_with(
        self, task: Any, args: tuple | list = (), kwargs: dict | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> str:  # fmt: skip
        job = self._job(task, args, kwargs, **options)
        return (await self._enqueue(self.broker.enqueue([job])))[0][0]

    async def enqueue_many(self, calls: Iterable[Any]) -> list[str]:
        """Enqueue many ``(task, args, kwargs)`` calls, one script call per ``BATCH`` (100) jobs."""
        batches = self._batches(calls)
        replies: list[Any] = []
        for _, call in batches:
            try:
                replies.append(await self._enqueue(call))
            except redis.RedisError as exc:
                replies.append(exc)
                break
        return self._committed(batches, replies)

    async def _enqueue(self, call: Call) -> list:
        if not self.settings.min_replicas_acked:
            return await self.run(call)
        s = self.settings
        reply, acked = await self.run.acked(call, s.min_replicas_acked, s.replica_ack_timeout)
        return self._replicated(reply, acked)

    async def result(self, job_id: str, timeout: float | None = None) -> Any:
        until = deadline(timeout)
        while True:
            finished, value = self._outcome(job_id, await self.run(self.broker.watch(job_id)))
            if finished:
                return value
            if await self.redis.blpop(
                [self.keys.done(job_id)], timeout=remaining(until, MAX_BLOCK)
            ):
                await self._pass_on(self.redis.pipeline(), job_id).execute()

    async def status(self, job_id: str) -> JobStatus:
        return _status(job_id, await self.redis.hgetall(self.keys.job(job_id)))

    async def cancel(self, job_id: str) -> bool:
        queue = await self.redis.hget(self.keys.job(job_id), "queue")
        return (
            queue is not None
            and await self.run(self.broker.cancel(job_id, queue.decode())) in CANCELLED
        )

    async def pause(self, queue: str) -> bool:
        return await self.run(self.broker.pause(check_queue(queue)))

    async def resume(self, queue: str) -> bool:
        return await self.run(self.broker.resume(check_queue(queue)))

    async def purge(self, queue: str) -> int:
        total, taken = 0, 1
        while taken:
            purged, taken = await self.run(self.broker.purge(check_queue(queue)))
            total += purged
        return total

    async def queues(self) -> list[str]:
        return _names(await self.redis.smembers(self.keys.queues))

    async def queue_lengths(self) -> dict[str, dict[str, int]]:
        queues = await self.queues()
        return self._lengths_reply(queues, await self._lengths_pipe(queues).execute())

    async def dead_letter(self, limit: int = 100) -> list[JobStatus]:
        ids = _names(await self.redis.zrevrange(self.keys.dead, 0, limit - 1), sort=False)
        return _statuses(ids, await self._records_pipe(ids).execute())

    async def retry_dead(self, job_id: str = ALL) -> int:
        if job_id != ALL:
            return await self.run(self.broker.dead_retry([job_id]))
        total = 0
        while n := await self.run(self.broker.dead_retry()):
            total += n
        return total

    async def delete_dead(self, job_id: str = ALL) -> int:
        if job_id != ALL:
            return await self.run(self.broker.dead_delete([job_id]))
        total = 0
        while n := await self.run(self.broker.dead_delete()):
            total += n
        return total
