"""The single enqueue's fast path: the call packed from a per-shape template
(``broker.EnqueuePacker``) and written on the runner's spare connection (``runner.Spare``, and
``runner.AsyncSpare`` for the asyncio client).

The packed bytes must be exactly what packing the call's keys and arguments gives; the spare
must behave as a connection from the pool would: replaced when Redis closed it, never used in a
forked child, not kept when the pool has one connection only, shared safely by threads."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from datetime import datetime

import hiredis
import pytest
import redis

from taskqueue import AsyncTaskQueue, TaskQueue, task
from taskqueue.broker import Broker, EnqueuePacker
from taskqueue.connection import RedisSettings
from taskqueue.jobs import make_job
from taskqueue.keys import Keys
from taskqueue.registry import Registry
from taskqueue.scripts import sha
from taskqueue.testing import wait_for, wait_for_async

pytestmark = pytest.mark.smoke

local = Registry()


@task(registry=local, queue="mail", max_retries=7, timeout=2.5, result_ttl=30, dead_letter=False)
def shaped(x: object) -> None:
    """A task whose options all differ from the defaults."""


@task(registry=local)
def plain(x: object) -> None:
    """A task with the default options."""


def _hiredis_packed(call) -> bytes:  # noqa: ANN001
    return hiredis.pack_command(("EVALSHA", sha(call.script), len(call.keys), *call.keys,
                                 *call.args))  # fmt: skip


@pytest.mark.parametrize(
    ("target", "args", "kwargs", "opts"),
    [
        (plain, (1,), None, {}),
        (shaped, ("\r\n$3\r\n", b"\x00\xff" * 300), {"k": [1.5, None]}, {}),
        (plain, (), None, {"queue": "other.q:1", "max_retries": 0, "timeout": 0.25}),
        ("tâche-ünïcode", ("ü",), None, {"strict": False}),
    ],
)
def test_a_packed_enqueue_is_byte_for_byte_what_packing_its_arguments_gives(
    target: object, args: tuple, kwargs: dict | None, opts: dict
) -> None:
    broker = Broker(Keys("tq", "ns-1"), idem_ttl_ms=1234)
    for _ in range(3):  # the first call builds the template, the next ones reuse it
        job = make_job(local, target, args, kwargs, max_payload=1 << 20, **opts)
        call = broker.enqueue([job])
        assert call.packed is not None
        assert call.packed == _hiredis_packed(call)
        assert call.script == "enqueue_now" and call.keys[2] == broker.keys.job(job.id)
        assert job.id in call.args and job.payload in call.args


@pytest.mark.parametrize(
    "opts", [{"key": "k1"}, {"delay": 5}, {"expires": 60}, {"at": datetime(2030, 1, 1)}]
)
def test_jobs_of_other_shapes_are_packed_by_the_connection(opts: dict) -> None:
    broker = Broker(Keys("tq", "default"))
    job = make_job(local, plain, (1,), None, max_payload=1 << 20, **opts)
    assert not EnqueuePacker.fits(job)
    assert broker.enqueue([job]).packed is None
    two = [make_job(local, plain, (i,), None, max_payload=1 << 20) for i in range(2)]
    assert broker.enqueue(two).packed is None


def test_a_single_enqueue_lands_exactly_what_the_batch_script_lands(tq: TaskQueue) -> None:
    """``enqueue_now`` (one job, packed) and ``enqueue`` (a batch) write the same record, ready
    list, wake token, queue name and counters: only the id and the clock may differ."""
    single = tq.enqueue_with("plain.task", (0, "ü"), strict=False)
    state_single = _landed(tq, single)
    tq.redis.flushall()
    job = tq._job("plain.task", (0, "ü"), None, strict=False)
    assert tq.run(tq.broker._enqueue([job])) == [(job.id, False)]
    assert _landed(tq, job.id) == state_single


def _landed(tq: TaskQueue, job_id: str) -> dict:
    r, k = tq.redis, tq.keys
    record = {f.decode(): v for f, v in r.hgetall(k.job(job_id)).items()}
    assert record.pop("id") == job_id.encode()
    assert record.pop("enqueued_ms") == record.pop("due_ms")
    (minute,) = r.keys(k.stats + ":*")
    assert r.pttl(minute) > 0
    return {
        "record": record,
        "ready": r.lrange(k.ready("default"), 0, -1) == [job_id.encode()],
        "wake": r.lrange(k.wake("default"), 0, -1),
        "queues": r.smembers(k.queues),
        "stats": r.hgetall(k.stats),
        "minute": r.hgetall(minute),
    }


def _conn_id(admin: redis.Redis, conn) -> int:  # noqa: ANN001
    """Redis's id of the client on ``conn``'s socket."""
    port = conn._sock.getsockname()[1]
    return next(int(c["id"]) for c in admin.client_list() if c["addr"].endswith(f":{port}"))


def _at_eof(conn) -> bool:  # noqa: ANN001
    try:
        return conn._sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False


def test_a_spare_connection_closed_by_redis_is_replaced_before_the_next_call(
    tq: TaskQueue, redis_url: str
) -> None:
    for i in range(2):  # the first call loads the script through the pool, which takes the spare
        tq.enqueue_with("anything", (i,), strict=False)
    spare = tq.run.spare.conn
    assert spare is not None
    admin = redis.Redis.from_url(redis_url)
    try:
        admin.client_kill_filter(_id=_conn_id(admin, spare))
        wait_for(lambda: _at_eof(spare), timeout=5, what="the killed connection's EOF")
        # Without the check this call would be written to a closed socket and raise.
        job_id = tq.enqueue_with("anything", (1,), strict=False)
        assert tq.status(job_id).state == "queued"
    finally:
        admin.close()


def test_a_forked_child_never_uses_the_parents_spare(tq: TaskQueue, redis_url: str) -> None:
    tq.enqueue_with("anything", ("load",), strict=False)  # loads the script (takes the spare)
    first = tq.enqueue_with("anything", (0,), strict=False)
    parent_conn = tq.run.spare.conn
    assert parent_conn is not None
    admin = redis.Redis.from_url(redis_url)
    try:
        parent_id = _conn_id(admin, parent_conn)
        pid = os.fork()
        if pid == 0:  # the child: enqueue, and say which Redis client it used
            code = 1
            try:
                tq.enqueue_with("anything", ("child",), strict=False)
                child_conn = tq.run.spare.conn
                code = 0 if child_conn is not parent_conn and child_conn is not None else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # The parent's spare is the same, still in step: its next call gets its own reply.
        second = tq.enqueue_with("anything", (2,), strict=False)
        assert tq.run.spare.conn is parent_conn and _conn_id(admin, parent_conn) == parent_id
        assert tq.status(first).state == tq.status(second).state == "queued"
        assert tq.redis.llen(tq.keys.ready("default")) == 4
    finally:
        admin.close()


def test_the_spare_goes_back_to_the_pool_for_any_other_taker(redis_url: str) -> None:
    """A pool of two: the spare never keeps another caller waiting for a connection."""
    tq = TaskQueue(RedisSettings(url=redis_url, pool_size=2))
    try:
        for i in range(2):  # the first call loads the script through the pool
            tq.enqueue_with("anything", (i,), strict=False)
        assert tq.run.spare.conn is not None
        pool = tq.redis.connection_pool
        pool.timeout = 2  # a taker that found no connection would raise after 2 s
        held = [pool.get_connection(), pool.get_connection()]  # both: the spare came back
        assert tq.run.spare.conn is None
        for conn in held:
            pool.release(conn)
        # In use by a call while another taker asks: it goes back when that call ends.
        got: list = []
        orig = tq.run.spare.give_back

        def give_back(conn) -> None:  # noqa: ANN001
            if not got:
                got.append(pool.get_connection())  # the pool's other connection
                waiter = threading.Thread(target=lambda: got.append(pool.get_connection()))
                waiter.start()
                wait_for(lambda: tq.run.spare.wanted, 5, "the waiting taker's request")
                orig(conn)
                waiter.join(5)
                return
            orig(conn)

        tq.run.spare.give_back = give_back
        job_id = tq.enqueue_with("anything", (1,), strict=False)
        assert len(got) == 2 and tq.run.spare.conn is None
        for conn in got:
            pool.release(conn)
        assert tq.status(job_id).state == "queued"
    finally:
        tq.close()


def test_threads_share_the_spare_and_every_job_lands(redis_url: str) -> None:
    tq = TaskQueue(RedisSettings(url=redis_url, pool_size=4))
    errors: list[BaseException] = []

    def produce(n: int) -> None:
        try:
            for i in range(200):
                tq.enqueue_with("anything", (n, i), strict=False)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=produce, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert tq.redis.llen(tq.keys.ready("default")) == 1600
        assert len(tq.redis.connection_pool._connections) <= 4
    finally:
        tq.close()


# -- the asyncio client's spare (runner.AsyncSpare) ------------------------------------------------
def _async_conn_id(admin: redis.Redis, conn) -> int:  # noqa: ANN001
    """Redis's id of the client on an asyncio connection's socket."""
    port = conn._writer.get_extra_info("sockname")[1]
    return next(int(c["id"]) for c in admin.client_list() if c["addr"].endswith(f":{port}"))


def test_an_async_spare_closed_by_redis_is_replaced_before_the_next_call(redis_url: str) -> None:
    async def go() -> None:
        tq = AsyncTaskQueue(redis_url)
        admin = redis.Redis.from_url(redis_url)
        try:
            for i in range(2):  # the first call loads the script through the pool
                await tq.enqueue_with("anything", (i,), strict=False)
            spare = tq.run.spare.conn
            assert spare is not None
            writer = spare._writer
            admin.client_kill_filter(_id=_async_conn_id(admin, spare))
            await wait_for_async(lambda: spare._reader.at_eof(), 5, "the killed connection's EOF")
            # Without the check this call would be written to a closed connection and raise.
            job_id = await tq.enqueue_with("anything", (2,), strict=False)
            # The pool reconnected it (redis-py reuses the object): a new socket carried the call.
            assert tq.run.spare.conn is not None and tq.run.spare.conn._writer is not writer
            assert (await tq.status(job_id)).state == "queued"
        finally:
            admin.close()
            await tq.close()

    asyncio.run(go())


def test_the_async_spare_goes_back_to_the_pool_for_any_other_taker(redis_url: str) -> None:
    """A pool of two: the spare never keeps another coroutine waiting for a connection."""

    async def go() -> None:
        tq = AsyncTaskQueue(RedisSettings(url=redis_url, pool_size=2))
        try:
            for i in range(2):  # the first call loads the script through the pool
                await tq.enqueue_with("anything", (i,), strict=False)
            spare = tq.run.spare
            assert spare.conn is not None
            pool = tq.redis.connection_pool
            held = [await asyncio.wait_for(pool.get_connection(), 2) for _ in range(2)]
            assert spare.conn is None  # both: the spare came back
            for conn in held:
                await pool.release(conn)
            # In use by a call while another taker asks: it goes back when that call ends.
            got: list = []
            orig = spare.give_back

            async def give_back(conn) -> None:  # noqa: ANN001
                if not got:
                    got.append(await pool.get_connection())  # the pool's other connection
                    waiter = asyncio.ensure_future(pool.get_connection())
                    await wait_for_async(lambda: spare.wanted, 5, "the waiting taker's request")
                    await orig(conn)
                    got.append(await asyncio.wait_for(waiter, 5))
                    return
                await orig(conn)

            spare.give_back = give_back
            job_id = await tq.enqueue_with("anything", (9,), strict=False)
            assert len(got) == 2 and spare.conn is None
            for conn in got:
                await pool.release(conn)
            assert (await tq.status(job_id)).state == "queued"
        finally:
            await tq.close()

    asyncio.run(go())


def test_coroutines_share_the_async_spare_and_every_job_lands(redis_url: str) -> None:
    async def go() -> None:
        tq = AsyncTaskQueue(RedisSettings(url=redis_url, pool_size=4))

        async def produce(n: int) -> None:
            for i in range(200):
                await tq.enqueue_with("anything", (n, i), strict=False)

        try:
            await asyncio.gather(*(produce(n) for n in range(8)))
            assert await tq.redis.llen(tq.keys.ready("default")) == 1600
            pool = tq.redis.connection_pool
            assert len(pool._available_connections) + len(pool._in_use_connections) <= 4
        finally:
            await tq.close()

    asyncio.run(go())
