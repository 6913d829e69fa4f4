"""``make demo``: work 1,000 real jobs, on the embedded Redis unless REDIS_URL is set."""

from __future__ import annotations

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from examples.demo_tasks import add, resize_image  # noqa: E402
from taskqueue import TaskQueue  # noqa: E402
from taskqueue.redact import redact_url  # noqa: E402
from taskqueue.testing import RedisServer  # noqa: E402
from taskqueue.testing.server import _embedded  # noqa: E402
from taskqueue.worker import Worker  # noqa: E402

JOBS = 1000


def bar(done: int, total: int, label: str) -> None:
    width = 40
    filled = width * done // total
    sys.stdout.write(f"\r{label:<10} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stdout.flush()


def main() -> None:
    server = None
    url = os.environ.get("REDIS_URL")
    if not url:
        server = RedisServer(binary=_embedded()).start()
        url = server.url
        print(f"started embedded redis-server on {url}")
    else:
        print(f"using REDIS_URL={redact_url(url)}")
    try:
        tq = TaskQueue(url)
        ids = []
        for i in range(JOBS):
            ids.append(tq.enqueue(resize_image, i, 640) if i % 10 else tq.enqueue(add, i, i))
            if i % 50 == 49:
                bar(i + 1, JOBS, "enqueued")
        print()
        worker = Worker(tq, max_concurrent_tasks=20)
        thread = threading.Thread(target=worker.run, daemon=True)
        started = time.perf_counter()
        thread.start()
        done = 0
        while done < JOBS:
            done = sum(1 for j in ids if tq.status(j).state == "succeeded")
            bar(done, JOBS, "finished")
            time.sleep(0.2)
        print(f"\n{JOBS} jobs done in {time.perf_counter() - started:.2f}s;"
              f" add(10, 10) = {tq.result(ids[10], timeout=5)}")  # fmt: skip
        worker.stop()
        thread.join(timeout=35)
        print("worker stopped gracefully")
    finally:
        if server is not None:
            server.close()


if __name__ == "__main__":
    main()
