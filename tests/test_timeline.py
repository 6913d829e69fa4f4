"""Per-minute counters (taskqueue.control.timeline): the pure series and a real read."""

from __future__ import annotations

from taskqueue import task
from taskqueue.control.timeline import minute_series, read_timeline
from taskqueue.worker import Worker


def test_minute_series_sums_queues_and_skips_histograms() -> None:
    hashes = [
        {b"a:succeeded": b"3", b"b:succeeded": b"2", b"a:run:4": b"5", b"a:failed": b"1"},
        {},
        {b"odd:name:succeeded": b"7", b"@t:succeeded": b"7"},
    ]
    out = minute_series([10, 11, 12], hashes)
    assert out["minutes"] == [600, 660, 720]
    assert out["total"]["succeeded"] == [5, 0, 7]
    assert out["total"]["failed"] == [1, 0, 0]
    assert out["queues"]["a"]["succeeded"] == [3, 0, 0]
    assert out["queues"]["odd:name"]["succeeded"] == [0, 0, 7]
    assert set(out["queues"]) == {"a", "b", "odd:name"}


def test_read_timeline_counts_real_jobs(client, reg) -> None:
    @task(name="t", registry=reg)
    def t() -> None:
        pass

    client.enqueue_many([(t, (), {}) for _ in range(7)])
    Worker(client, registry=reg).run(burst=True)
    out = read_timeline(client.redis, client.keys, 60)
    assert len(out["minutes"]) == 60 and out["minutes"][-1] == out["now"] // 60 * 60
    assert sum(out["total"]["succeeded"]) == 7 and sum(out["total"]["enqueued"]) == 7
    assert sum(out["queues"]["default"]["succeeded"]) == 7
