"""The benchmark's task body, shared by every library's app module.

The task takes one argument and does one INCR on a counter. When the argument is a wall-clock
timestamp in microseconds (the latency phase), it also records start-minus-enqueue in a list.
Any other value (a small int, or a padding string in the payload-size runs) is ignored.
"""

from __future__ import annotations

import logging
import os
import time

import redis
import redis.asyncio

COUNTER = "bench:counter"
LATENCY = "bench:latency"
#: Arguments above this are enqueue timestamps (µs since the epoch).
STAMP_MIN = 10**15

logging.basicConfig(level=logging.WARNING)
logging.getLogger().setLevel(logging.WARNING)

_sync: dict[int, redis.Redis] = {}
_async: dict[int, redis.asyncio.Redis] = {}


def url() -> str:
    return os.environ["BENCH_REDIS_URL"]


def concurrency() -> int:
    return int(os.environ.get("BENCH_CONCURRENCY", "10"))


def sync_client() -> redis.Redis:
    pid = os.getpid()  # one client per process: prefork pools fork after import
    client = _sync.get(pid)
    if client is None:
        client = _sync[pid] = redis.Redis.from_url(url())
    return client


def run_sync(x: object) -> None:
    start = time.time_ns() // 1000
    r = sync_client()
    if isinstance(x, int) and x > STAMP_MIN:  # the sample first: the harness waits on the counter
        r.rpush(LATENCY, start - x)
    r.incr(COUNTER)


async def run_async(x: object) -> None:
    start = time.time_ns() // 1000
    pid = os.getpid()
    r = _async.get(pid)
    if r is None:
        r = _async[pid] = redis.asyncio.Redis.from_url(url())
    if isinstance(x, int) and x > STAMP_MIN:  # the sample first: the harness waits on the counter
        await r.rpush(LATENCY, start - x)
    await r.incr(COUNTER)
