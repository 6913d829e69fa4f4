"""Tasks used by ``make demo`` (imported by the workers with ``--import examples.demo_tasks``)."""

import asyncio
import random

from taskqueue import queue_names, task


@task(name="demo.resize_image", queue=queue_names.DEFAULT, max_retries=3, timeout=10)
async def resize_image(image_id: int, width: int) -> dict:
    await asyncio.sleep(random.uniform(0.001, 0.01))  # pretend to do I/O
    return {"image_id": image_id, "width": width}


@task(name="demo.add", queue=queue_names.HIGH_PRIORITY)
def add(a: int, b: int) -> int:
    return a + b
