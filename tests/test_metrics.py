"""The metrics snapshot: histogram math (pure), Lua/Python bucket parity, and exact counts read
back from a real Redis after running known jobs."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from known_jobs import run_known_jobs

from taskqueue.keys import Keys
from taskqueue.metrics import Histogram, bucket_of, read_snapshot
from taskqueue.metrics.build import RawMetrics, build_snapshot, master_from_record, parse_stats
from taskqueue.metrics.histogram import bounds, representative
from taskqueue.scripts import LUA_DIR


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_every_duration_lies_in_its_bucket(ms: float) -> None:
    low, high = bounds(bucket_of(ms))
    assert low <= ms < high


@given(st.integers(min_value=1, max_value=10**9))
def test_a_bucket_stands_for_its_values_within_ten_percent(ms: int) -> None:
    rep = representative(bucket_of(ms))
    assert abs(rep - ms) / ms <= 0.0625 + 1e-12
    if ms < 16:
        assert rep == ms  # whole milliseconds below 16 ms are exact


def test_lua_and_python_buckets_agree(tq) -> None:
    body = (LUA_DIR / "includes" / "hist_bucket.lua").read_text()
    script = tq.redis.register_script(
        body + "local out = {} for i, v in ipairs(ARGV) do out[i] = hist_bucket(tonumber(v)) end "
        "return out"
    )
    values = [0, 0.5, 1, 2, 3, 7, 8, 9, 15, 16, 17, 100, 127, 128, 129, 1000, 4095, 4096, 65537]
    values += [random.Random(3).randint(0, 10**8) for _ in range(200)]
    assert script(args=values) == [bucket_of(v) for v in values]


@given(st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=400))
def test_percentiles_are_within_the_bucket_error(samples: list[int]) -> None:
    h = Histogram.merge(Histogram({bucket_of(s): 1}) for s in samples)
    ordered = sorted(samples)
    for q in (0.5, 0.95, 0.99):
        exact = ordered[max(1, math.ceil(q * len(samples))) - 1]
        got = h.percentile(q)
        assert got is not None
        assert abs(got - exact) <= max(0.5, 0.0625 * exact) + 1e-9


def test_empty_histogram_has_no_percentile() -> None:
    assert Histogram().percentile(0.95) is None
    assert Histogram().summary() == {
        "count": 0,
        "mean": None,
        "p50": None,
        "p95": None,
        "p99": None,
    }


def test_parse_stats_splits_queues_tasks_and_histograms() -> None:
    got = parse_stats(
        {b"default:succeeded": b"3", b"a:b:failed": b"1", b"default:run_ms:9": b"2",
         b"@mod.add:succeeded": b"3", b"garbage": b"x", b"q:wait_ms:0": b"5"}
    )  # fmt: skip
    assert got["default"].counts == {"succeeded": 3}
    assert got["default"].hists == {"run_ms": {9: 2}}
    assert got["a:b"].counts == {"failed": 1}
    assert got["@mod.add"].counts == {"succeeded": 3}
    assert got["q"].hists == {"wait_ms": {0: 5}}
    pair = parse_stats({b"default@mod.add:succeeded": b"4", b"default@mod.add:run_ms:9": b"4"})
    assert pair["default"].counts == pair["@mod.add"].counts == {"succeeded": 4}
    assert pair["default"].hists == pair["@mod.add"].hists == {"run_ms": {9: 4}}


def test_windows_add_up_whole_minutes_and_report_the_span() -> None:
    minute = {b"default:succeeded": b"6", b"default:failed": b"2", b"default:run_ms:1": b"8"}
    raw = RawMetrics(
        now_ms=30_000 + 60_000 * 1000,
        queues=[b"default"],
        paused=[],
        lengths={"default": (4, 1, 2)},
        totals={b"default:succeeded": b"100"},
        minutes=[minute] * 61,
        masters=[],
        dead=0,
    )
    snap = build_snapshot(raw)
    q = snap.queues["default"]
    assert (q.queued, q.scheduled, q.active, q.depth) == (4, 1, 2, 7)
    w5 = q.window(5)
    assert w5.seconds == 330 and w5.count("succeeded") == 36 and w5.count("failed") == 12
    assert w5.error_rate == pytest.approx(0.25) and w5.throughput == pytest.approx(48 / 330)
    assert w5.run_ms.percentile(0.95) == 1.0
    assert snap.overall.window(60).count("succeeded") == 6 * 61
    assert snap.overall.totals == {"succeeded": 100}


def test_a_master_record_missing_fields_still_reads() -> None:
    m = master_from_record({"id": "h:1", "workers": [{"busy": 2, "slots": 10, "rss": 5}]})
    assert (m.busy, m.slots, m.utilization, m.rss, m.autoscaler) == (2, 10, 0.2, 5, None)


def test_a_worker_reports_its_uptime_and_an_older_record_none() -> None:
    m = master_from_record(
        {"id": "h:1", "workers": [{"index": 1, "started": 1000.0}, {"index": 2}]}
    )
    new, old = (w.as_dict(1_090_000) for w in m.workers)
    assert (new["started"], new["uptime_s"]) == (1000.0, 90.0)
    assert (old["started"], old["uptime_s"]) == (None, None)
    assert m.as_dict(1_090_000)["workers"][0]["uptime_s"] == 90.0


def test_counts_and_depths_match_the_jobs_run(tq, reg) -> None:
    run_known_jobs(tq, reg)
    tq.enqueue_with("ok", (1,), queue="low_priority", strict=False)  # no worker reads it
    tq.pause("low_priority")

    snap = read_snapshot(tq.redis, Keys())
    d = snap.queues["default"]
    t = d.totals
    assert t["enqueued"] == 16 and t["started"] == 18
    assert t["succeeded"] == 13 and t["failed"] == 5 and t["retried"] == 3 and t["dead"] == 2
    assert (d.queued, d.scheduled, d.active) == (0, 1, 0)
    low = snap.queues["low_priority"]
    assert (low.queued, low.paused) == (1, True)
    assert snap.dead == 2
    w = d.window(1)
    assert w.count("succeeded") == 13 and w.error_rate == pytest.approx(5 / 18)
    assert w.run_ms.count == 18 and w.wait_ms.count == 18
    # 8 runs of about 0 ms, then two each of 20, 40, 60, 80 and 100 ms (sleeps overshoot)
    assert w.run_ms.percentile(0.5) >= 20 * 0.9375
    assert 100 * 0.9375 <= w.run_ms.percentile(0.99) <= 2000  # generous: a loaded CI machine
    assert snap.overall.totals["enqueued"] == 17
    ok, flaky, boom = snap.tasks["ok"], snap.tasks["flaky"], snap.tasks["boom"]
    assert (ok.totals["enqueued"], ok.totals["succeeded"]) == (12, 10)  # 1 delayed, 1 low queue
    assert (flaky.totals["started"], flaky.totals["failed"], flaky.totals["retried"]) == (6, 3, 3)
    assert (boom.totals["failed"], boom.totals["dead"], boom.totals.get("succeeded", 0)) == (
        2,
        2,
        0,
    )
    assert ok.window(1).run_ms.count == 10 and ok.window(1).run_ms.percentile(0.5) >= 40 * 0.9375
    assert snap.as_dict()["queues"]["default"]["totals"]["dead"] == 2
