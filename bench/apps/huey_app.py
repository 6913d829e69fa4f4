"""Huey: RedisHuey (blocking dequeue), consumer with process workers."""

from benchtask import run_sync, url
from huey import RedisHuey

huey = RedisHuey("bench", url=url())


@huey.task()
def incr(x):
    run_sync(x)
