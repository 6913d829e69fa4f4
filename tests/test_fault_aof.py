"""Redis SIGKILLed mid-enqueue and mid-drain, with AOF `appendfsync always` and `everysec`.

What each setting can lose: Redis writes the AOF buffer to the file (write(2)) before it answers
the clients whose commands it holds, under both settings. A killed Redis *process* therefore
loses no acknowledged write with either: the kernel still has the bytes and flushes them. What
`everysec` adds is up to one second of writes lost when the *machine* dies (power, kernel panic)
before the next fsync; `always` fsyncs before replying. This test measures the process-kill case
for both (0 acknowledged enqueues lost, every job finished once or explained by the kill), and
docs/reliability.md states the machine-crash window that no test on this machine can produce.
"""

from __future__ import annotations

import threading

import pytest

from taskqueue import TaskQueue
from taskqueue.errors import TaskQueueError
from taskqueue.testing import wait_for
from taskqueue.testing.ledger import Ledger, check_ledger, recovery
from tests import tasks_faults  # noqa: F401 - registers the ledger tasks

TASKS = "tests.tasks_faults"


@pytest.mark.slow
@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_redis_killed_mid_enqueue_and_mid_drain_loses_no_acknowledged_job(
    redis_factory, masters, tmp_path, fsync
) -> None:
    server = redis_factory(aof=True, args=["--appendfsync", fsync])
    ledger = Ledger(tmp_path / "ledger.jsonl")
    m = masters(server.url, "-w", "2", env=ledger.env(), imports=TASKS)
    m.wait_workers(2)
    tq = TaskQueue(server.url)
    acked: list[str] = []
    refused = 0
    stop = threading.Event()

    def producer() -> None:
        nonlocal refused
        i = 0
        while not stop.is_set():
            try:
                acked.append(tq.enqueue_with("ledger.sleep", (0.002, i)))
            except TaskQueueError:
                refused += 1  # not acknowledged: the caller knows it must retry
                threading.Event().wait(0.05)
            i += 1

    t = threading.Thread(target=producer, daemon=True)
    t.start()
    wait_for(lambda: len(acked) > 1000 and len(ledger.runs()) > 300, 120, "enqueues and runs")
    ledger.fault("redis_sigkill")
    server.kill()
    before_kill = len(acked)
    server.start()
    ledger.healed("redis_sigkill")  # excuses nothing: times the runs after the restart
    wait_for(lambda: len(acked) > before_kill + 200, 120, "enqueues to resume after the restart")
    stop.set()
    t.join(30)
    wait_for(lambda: all(tq.status(j).state == "succeeded" for j in acked[-50:]), 180,
             "the workers to reconnect and drain")  # fmt: skip
    wait_for(lambda: not sum(q.get("queued", 0) + q.get("active", 0)
                             for q in tq.queue_lengths().values()),
             180, "the queue to drain")  # fmt: skip
    # Every acknowledged enqueue survived the kill, and ran once unless the kill explains more.
    report = check_ledger(tq.redis, acked, ledger)
    print(f"\n{fsync}: {len(acked)} jobs, {report.runs} runs, {len(report.excused)} excused, "
          f"recovery: {recovery(ledger, 'redis_sigkill').summary()}")  # fmt: skip
    assert report.places["succeeded"] == len(acked), report.places
    assert m.stop(timeout=120) == 0
