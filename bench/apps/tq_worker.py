"""One taskqueue worker process (used until/unless the ``task-worker`` pre-fork CLI is available).

python tq_worker.py CONCURRENCY [APP_MODULE]
"""

import importlib
import logging
import signal
import sys

import benchtask

from taskqueue.worker import Worker


def main() -> None:
    logging.getLogger("taskqueue").setLevel(logging.WARNING)
    importlib.import_module(sys.argv[2] if len(sys.argv) > 2 else "tq_app")  # registers the task
    worker = Worker(benchtask.url(), queues=["default"], max_concurrent_tasks=int(sys.argv[1]))
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    worker.run()


if __name__ == "__main__":
    main()
