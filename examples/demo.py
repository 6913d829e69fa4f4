"""``make demo``: a master with 2 worker processes works 1,000 jobs, then stops gracefully.

Uses the embedded Redis unless REDIS_URL is set.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from examples.demo_tasks import add, resize_image  # noqa: E402
from taskqueue import TaskQueue  # noqa: E402
from taskqueue.redact import redact_url  # noqa: E402
from taskqueue.testing import RedisServer  # noqa: E402
from taskqueue.testing.server import _embedded  # noqa: E402

JOBS = 1000


def bar(done: int, total: int, label: str) -> None:
    width = 40
    filled = width * done // total
    sys.stdout.write(f"\r{label:<10} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stdout.flush()


def start_master(url: str, log_path: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "taskqueue.cli.worker", "worker", "-r", url, "-w", "2",
           "--import", "examples.demo_tasks", "--max-concurrent-tasks", "20",
           "--graceful-timeout", "10"]  # fmt: skip
    log = open(log_path, "w")  # noqa: SIM115 - the master writes to it until it exits
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def main() -> int:
    server = None
    url = os.environ.get("REDIS_URL")
    if not url:
        server = RedisServer(binary=_embedded()).start()
        url = server.url
        print(f"started embedded redis-server on {url}")
    else:
        print(f"using REDIS_URL={redact_url(url)}")
    log_path = os.path.join(tempfile.gettempdir(), "taskqueue-demo-master.log")
    master = start_master(url, log_path)
    print(f"started master pid {master.pid}: task-worker worker -w 2 (log: {log_path})")
    try:
        tq = TaskQueue(url)
        ids = []
        started = time.perf_counter()
        for i in range(JOBS):
            ids.append(tq.enqueue(resize_image, i, 640) if i % 10 else tq.enqueue(add, i, i))
            if i % 50 == 49:
                bar(i + 1, JOBS, "enqueued")
        print()
        done = 0
        deadline = time.monotonic() + 120
        while done < JOBS and time.monotonic() < deadline and master.poll() is None:
            pipe = tq.redis.pipeline(transaction=False)
            for j in ids:
                pipe.hget(tq.keys.job(j), "state")
            done = sum(1 for s in pipe.execute() if s == b"succeeded")
            bar(done, JOBS, "finished")
            time.sleep(0.2)
        print(f"\n{done}/{JOBS} jobs done in {time.perf_counter() - started:.2f}s;"
              f" add(10, 10) = {tq.result(ids[10], timeout=5)}")  # fmt: skip
        master.send_signal(signal.SIGTERM)
        code = master.wait(timeout=30)
        print(f"master stopped gracefully (SIGTERM), exit status {code}")
        return 0 if code == 0 and done == JOBS else 1
    finally:
        if master.poll() is None:
            master.kill()
            master.wait()
        if server is not None:
            server.close()


if __name__ == "__main__":
    sys.exit(main())
