"""Soak: 5,000 jobs on two masters while worker processes and whole masters are SIGKILLed at
seeded random moments (``taskqueue.testing.soak``; ``bench/soak.py`` runs 100,000). Nothing is
lost, every extra run is explained by a kill the ledger recorded, workers are also recycled, no
key piles up in Redis, and master RSS and Redis memory do not grow from the first third of the
run to the last."""

from __future__ import annotations

import pytest

from taskqueue.testing.soak import run_soak


@pytest.mark.slow
def test_soak_under_random_sigkills_loses_nothing(redis_url, tmp_path) -> None:
    report = run_soak(redis_url, tmp_path, jobs=5_000, seed=7, min_kills=6, timeout=400,
                      max_tasks_per_child=600)  # fmt: skip
    s = report.summary()
    assert s["worker_recycles"] >= 1, s  # recycling goes on beside the kills
    # No key piles up: the job records (until result_ttl) and a fixed set of namespace keys;
    # what killed masters leave in the registered-tasks hash and the masters index is bounded
    # by the kills.
    census = dict(s["keys_after"])
    assert census.pop("job") == 5_000, census
    assert census.pop("fields:registered") <= report.master_kills, census
    assert census.pop("fields:masters") <= report.master_kills, census
    fixed = {"other:queues", "other:schema", "other:stats", "other:masters", "other:registered"}
    lasting = {k: n for k, n in census.items() if k != "done" and not k.endswith("(expiring)")}
    assert set(lasting) <= fixed and all(n == 1 for n in lasting.values()), census
    assert report.worker_kills + report.master_kills >= 6, s
    assert s["places"].get("succeeded", 0) + s["places"].get("dead", 0) == 5_000, s
    # A job dead-lettered here lost its worker max_stalls times: each loss is a recorded kill.
    assert s["places"].get("dead", 0) <= s["extra_runs_excused_by_kills"], s
    # Flat memory: the masters' RSS and Redis's own memory end where they were (with room for
    # allocator noise), though thousands of jobs and many respawns went through.
    assert s["master_rss_mib_last_third"] <= s["master_rss_mib_first_third"] * 1.5 + 5, s
    assert s["redis_used_mib_last_third"] <= s["redis_used_mib_first_third"] * 1.5 + 5, s
