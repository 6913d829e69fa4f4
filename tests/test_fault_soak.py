"""Soak: 5,000 jobs on two masters while worker processes and whole masters are SIGKILLed at
seeded random moments (``taskqueue.testing.soak``; ``bench/soak.py`` runs 100,000). Nothing is
lost, every extra run is explained by a kill the ledger recorded, and master RSS and Redis memory
do not grow from the first third of the run to the last."""

from __future__ import annotations

import pytest

from taskqueue.testing.soak import run_soak


@pytest.mark.slow
def test_soak_under_random_sigkills_loses_nothing(redis_url, tmp_path) -> None:
    report = run_soak(redis_url, tmp_path, jobs=5_000, seed=7, min_kills=6, timeout=400)
    s = report.summary()
    assert report.worker_kills + report.master_kills >= 6, s
    assert s["places"].get("succeeded", 0) + s["places"].get("dead", 0) == 5_000, s
    # A job dead-lettered here lost its worker max_stalls times: each loss is a recorded kill.
    assert s["places"].get("dead", 0) <= s["extra_runs_excused_by_kills"], s
    # Flat memory: the masters' RSS and Redis's own memory end where they were (with room for
    # allocator noise), though thousands of jobs and many respawns went through.
    assert s["master_rss_mib_last_third"] <= s["master_rss_mib_first_third"] * 1.5 + 5, s
    assert s["redis_used_mib_last_third"] <= s["redis_used_mib_first_third"] * 1.5 + 5, s
