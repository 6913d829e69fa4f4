"""Single script calls go straight to a pooled connection (``runner.direct_pool``), not through
redis-py's ``execute_command``: what that layer did must still hold. A script error leaves the
connection usable; a dropped connection raises and the next call gets a new one; a script
missing from Redis is loaded; a call cancelled while its reply is on the way never leaves that
reply for the next call to read; a pool whose connections retry is left to redis-py."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio

from taskqueue import AsyncTaskQueue, TaskQueue
from taskqueue.broker import Call
from taskqueue.runner import AsyncRunner, SyncRunner
from taskqueue.testing import wait_for, wait_for_async

pytestmark = pytest.mark.smoke


def _names(client: redis.Redis) -> list[str]:
    return [c.get("name", "") for c in client.client_list()]


def test_single_calls_take_the_direct_path(tq: TaskQueue) -> None:
    assert tq.run.pool is tq.redis.connection_pool
    job_id = tq.enqueue_with("anything", (1,), strict=False)
    assert tq.status(job_id).state == "queued"


def test_a_script_error_leaves_the_connection_in_the_pool(tq: TaskQueue, redis_url: str) -> None:
    tq.enqueue_with("anything", (1,), strict=False)
    admin = redis.Redis.from_url(redis_url)
    try:
        before = admin.info("stats")["total_connections_received"]
        bad = Call("enqueue", [tq.keys.stats, tq.keys.queues], ["x", 1], lambda raw: raw)
        with pytest.raises(redis.exceptions.ResponseError):
            tq.run(bad)
        # The same connection answers the next call with its own reply: none was opened.
        job_id = tq.enqueue_with("anything", (2,), strict=False)
        assert tq.status(job_id).state == "queued"
        assert admin.info("stats")["total_connections_received"] == before
    finally:
        admin.close()


def test_a_connection_dropped_mid_call_raises_and_the_next_call_reconnects(
    tq: TaskQueue, redis_url: str
) -> None:
    """The enqueue is sent, Redis holds it (CLIENT PAUSE WRITE holds scripts that write) and
    its connection is killed before a reply: the call raises a connection error, and the next
    call gets a fresh connection and its own reply."""
    import threading

    from taskqueue.errors import RedisUnavailable

    tq.enqueue_with("anything", (0,), strict=False)
    admin = redis.Redis.from_url(redis_url)
    errors: list[BaseException] = []

    def enqueue() -> None:
        try:
            tq.enqueue_with("anything", (1,), strict=False)
        except BaseException as exc:  # noqa: BLE001 - examined below
            errors.append(exc)

    try:
        admin.client_pause(10_000, all=False)
        caller = threading.Thread(target=enqueue)
        caller.start()
        held = wait_for(
            lambda: [c for c in admin.client_list() if c["cmd"] == "evalsha"], 10,
            "the enqueue to wait in Redis",
        )  # fmt: skip
        admin.client_kill_filter(_id=held[0]["id"])
        caller.join(10)
        assert not caller.is_alive()
    finally:
        admin.client_unpause()
        admin.close()
    assert len(errors) == 1 and isinstance(errors[0], RedisUnavailable), errors
    job_id = tq.enqueue_with("anything", (2,), strict=False)
    assert tq.status(job_id).state == "queued"


def test_a_flushed_script_is_loaded_again_on_the_direct_path(tq: TaskQueue) -> None:
    tq.enqueue_with("anything", (1,), strict=False)
    tq.redis.script_flush()
    job_id = tq.enqueue_with("anything", (2,), strict=False)
    assert tq.status(job_id).state == "queued"


def test_a_pool_whose_connections_retry_goes_through_redis_py(redis_url: str) -> None:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis.from_url(redis_url, retry=Retry(NoBackoff(), 2))
    tq = TaskQueue(client=client)
    try:
        job_id = tq.enqueue_with("anything", (1,), strict=False)
        assert tq.run.pool is None
        assert tq.status(job_id).state == "queued"
    finally:
        client.close()


def test_an_async_pool_whose_connections_retry_goes_through_redis_py(redis_url: str) -> None:
    """The asyncio twin: the first call finds the retry policy, keeps no spare from then on,
    and its own call and the next go through the client."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    async def go() -> None:
        client = redis.asyncio.Redis.from_url(redis_url, retry=Retry(NoBackoff(), 2))
        tq = AsyncTaskQueue(client=client)
        try:
            ids = [await tq.enqueue_with("anything", (i,), strict=False) for i in range(2)]
            assert tq.run.pool is None and tq.run.spare.conn is None
            assert [(await tq.status(i)).state for i in ids] == ["queued", "queued"]
        finally:
            await client.aclose()

    asyncio.run(go())


def test_async_direct_path_survives_a_cancel_with_the_reply_on_its_way(redis_url: str) -> None:
    """A call cancelled after its command was sent: the reply it leaves behind must never be
    read as the answer to the next call (its connection is dropped, not reused)."""

    async def go() -> None:
        tq = AsyncTaskQueue(redis_url)
        try:
            assert tq.run.pool is tq.redis.connection_pool
            await tq.enqueue_with("anything", (0,), strict=False)
            slow = Call("enqueue", [tq.keys.stats, tq.keys.queues], [0, 1], lambda raw: raw)
            admin = redis.asyncio.Redis.from_url(redis_url)
            # Redis holds every other client's commands for 300 ms: our call is sent and its
            # reply comes after the cancel.
            await admin.client_pause(300)
            call = asyncio.ensure_future(tq.run(slow))
            await wait_for_async(lambda: tq.run.spare.out, 5, "the call to take a connection")
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert tq.run.spare.conn is None and tq.run.spare.out == 0  # dropped, not kept
            await admin.aclose()
            # The next call gets its own reply: a job id, not the cancelled call's empty list.
            job_id = await tq.enqueue_with("anything", (1,), strict=False)
            assert (await tq.status(job_id)).state == "queued"
        finally:
            await tq.close()

    asyncio.run(go())


def test_sync_and_async_runners_pick_the_pool_and_skip_clusters(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    aclient = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert SyncRunner(client).pool is client.connection_pool
        assert AsyncRunner(aclient).pool is aclient.connection_pool
        single = redis.Redis.from_url(redis_url, single_connection_client=True)
        assert SyncRunner(single).pool is None
        single.close()
    finally:
        client.close()
        asyncio.run(aclient.aclose())
