"""SAQ: async function; ``concurrency`` = BENCH_CONCURRENCY per worker process."""

from benchtask import concurrency, run_async, url
from saq import Queue


async def incr(ctx, *, x):
    await run_async(x)


queue = Queue.from_url(url())
settings = {"queue": queue, "functions": [incr], "concurrency": concurrency()}
