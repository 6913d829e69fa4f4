"""No-op tasks for ``bench/master_bench.py`` (imported by the master's workers)."""

import time

from taskqueue import task


@task(name="bench.master.noop", max_retries=0)
async def noop(i: int = 0) -> int:
    return i


@task(name="bench.master.stamp", max_retries=0)
async def stamp() -> float:
    return time.time()
