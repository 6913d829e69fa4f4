"""Tasks the master tests import into their worker processes (``--import tests.tasks_for_master``)."""

from __future__ import annotations

import asyncio
import os
import time

from taskqueue import task
from taskqueue.errors import SoftTimeLimitExceeded

_leak: list[bytes] = []


@task(name="m.noop", max_retries=0)
def noop(i: int = 0) -> int:
    return i


@task(name="m.anoop", max_retries=0)
async def anoop(i: int = 0) -> int:
    return i


@task(name="m.sleep")
def sleep(seconds: float, i: int = 0) -> int:
    time.sleep(seconds)
    return i


@task(name="m.asleep")
async def asleep(seconds: float, i: int = 0) -> int:
    await asyncio.sleep(seconds)
    return i


@task(name="m.pid")
async def pid(seconds: float = 0.0) -> int:
    await asyncio.sleep(seconds)
    return os.getpid()


@task(name="m.leak", max_retries=0)
def leak(mib: int) -> int:
    _leak.append(os.urandom(mib * 1024 * 1024))
    return len(_leak)


@task(name="m.spin", timeout=1, max_retries=1, retry_backoff=0.05, retry_backoff_max=0.1)
def spin() -> None:
    # Ignores the soft time limit (SoftTimeLimitExceeded raised in its thread), so only the
    # master's hard kill of the worker process can stop it.
    while True:
        try:
            while True:
                pass
        except SoftTimeLimitExceeded:
            pass


@task(name="m.redis_version", max_retries=0)
def redis_version() -> list:
    """Whether this worker reuses the master's redis-py version lookup, and the version a
    redis-py client the task opens would send."""
    import redis
    import redis.utils

    conn = redis.Redis().connection_pool.make_connection()
    pinned = getattr(redis.utils.get_lib_version, "_taskqueue_pinned", False)
    return [pinned, conn.driver_info.lib_version]
