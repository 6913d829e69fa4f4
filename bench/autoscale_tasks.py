"""The job of ``bench/autoscale_burst.py``: I/O-bound work (an asyncio sleep)."""

import asyncio

from taskqueue import task


@task(name="bench.autoscale.work", max_retries=0)
async def work(seconds: float, i: int = 0) -> int:
    await asyncio.sleep(seconds)
    return i
