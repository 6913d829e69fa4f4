"""Dramatiq with its RedisBroker and default middleware."""

import dramatiq
from benchtask import run_sync, url
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=url())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="default", max_retries=0)
def incr(x):
    run_sync(x)
