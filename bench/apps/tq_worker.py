"""One taskqueue worker process (used until/unless the ``task-worker`` pre-fork CLI is available).

python tq_worker.py CONCURRENCY
"""

import logging
import signal
import sys

import benchtask
import tq_app  # noqa: F401  (registers the task)

from taskqueue.worker import Worker


def main() -> None:
    logging.getLogger("taskqueue").setLevel(logging.WARNING)
    worker = Worker(benchtask.url(), queues=["default"], max_concurrent_tasks=int(sys.argv[1]))
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    worker.run()


if __name__ == "__main__":
    main()
