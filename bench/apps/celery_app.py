"""Celery with the Redis broker: prefork pool, no result backend (Celery's default)."""

from benchtask import run_sync, url
from celery import Celery

app = Celery("bench", broker=url())
app.conf.update(
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_redirect_stdouts=False,
    task_default_queue="celery",
)


@app.task(name="incr", ignore_result=True)
def incr(x):
    run_sync(x)
