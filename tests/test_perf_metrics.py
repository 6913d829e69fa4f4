"""logging.enable_performance_monitoring: workers log periodic performance_metric records."""

from __future__ import annotations

import io
import json
import logging

from conftest import running_worker

from taskqueue import TaskQueue, logs, task
from taskqueue.config import TaskQueueConfig
from taskqueue.registry import Registry
from taskqueue.testing import wait_for
from taskqueue.worker.perf import PerfWindow, percentile


def test_percentile_and_window_summary() -> None:
    assert percentile([], 50) is None
    assert [percentile([1.0, 2.0, 3.0, 4.0], p) for p in (50, 95, 99)] == [2.0, 4.0, 4.0]
    w = PerfWindow(slots=2, now=0.0)
    for ms in (100.0, 200.0, 300.0, 400.0):
        w.record(ms, 10.0, succeeded=ms != 400.0)
    out = w.summary(now=1.0)
    assert out["jobs"] == 4 and (out["succeeded"], out["failed"]) == (3, 1)
    assert out["throughput_per_s"] == 4.0 and out["utilization"] == 0.5
    assert (out["run_ms_p50"], out["run_ms_p99"], out["wait_ms_p95"]) == (200.0, 400.0, 10.0)
    assert w.summary(now=2.0)["jobs"] == 0  # a new window


def test_performance_metric_records_appear(redis_url) -> None:
    reg = Registry()

    @task(name="quick", registry=reg)
    async def quick(i):
        return i

    env = {"TASKQUEUE_LOGGING__ENABLE_PERFORMANCE_MONITORING": "true",
           "TASKQUEUE_METRICS__EXPORT_INTERVAL": "0.3", "LOG_FORMAT": "json"}  # fmt: skip
    stream = io.StringIO()
    handler = logs.configure_logging_from_config(TaskQueueConfig.load(env=env), stream)
    try:
        tq = TaskQueue(redis_url, registry=reg)
        ids = tq.enqueue_many([(quick, (i,)) for i in range(20)])
        with running_worker(tq, reg, max_concurrent_tasks=4):
            wait_for(lambda: all(tq.status(i).state == "succeeded" for i in ids), 30, "jobs")

            def records() -> list[dict]:
                lines = [json.loads(x) for x in stream.getvalue().splitlines() if x.strip()]
                return [r for r in lines if r.get("event_type") == "performance_metric"]

            wait_for(lambda: sum(r["jobs"] for r in records()) == 20, 30, "records for 20 jobs")
        busy = [r for r in records() if r["jobs"]]
        assert busy[0]["level"] == "INFO" and busy[0]["slots"] == 4
        for key in ("throughput_per_s", "utilization", "run_ms_p50", "run_ms_p95", "run_ms_p99",
                    "wait_ms_p50", "wait_ms_p95", "wait_ms_p99", "interval_s", "worker"):  # fmt: skip
            assert key in busy[0], key
        assert 0.2 <= busy[0]["interval_s"] < 5
    finally:
        logging.getLogger().removeHandler(handler)
        logs.set_performance_interval(None)
    # off (the default): no record at all
    handler = logs.configure_logging_from_config(TaskQueueConfig.load(env={}), stream)
    assert logs.performance_interval() is None
    logging.getLogger().removeHandler(handler)
    # [metrics] enabled = false: none either, monitoring on or not
    off = TaskQueueConfig.load(env={**env, "TASKQUEUE_METRICS__ENABLED": "false"})
    handler = logs.configure_logging_from_config(off, stream)
    assert logs.performance_interval() is None
    logging.getLogger().removeHandler(handler)
