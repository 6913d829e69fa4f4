"""The execution ledger catches what it must: a second run without a fault, a lost job, a late
ack. And it excuses what it must: a retry after a failure, a run hit by an injected fault."""

from __future__ import annotations

import pytest

from taskqueue.testing import Ledger, check_ledger
from taskqueue.testing import ledger_tasks as lt
from taskqueue.worker import Worker


def _run(tq, ledger, monkeypatch) -> None:
    monkeypatch.setenv("TASKQUEUE_LEDGER", str(ledger.path))
    Worker(tq, max_concurrent_tasks=4).run(burst=True)


def test_clean_run_passes_and_results_name_their_run(tq, ledger, monkeypatch) -> None:
    ids = [tq.enqueue(lt.noop, i) for i in range(5)] + [tq.enqueue(lt.asleep, 0.01, 7)]
    _run(tq, ledger, monkeypatch)
    report = check_ledger(tq.redis, ids, ledger)
    assert report.runs == 6 and report.places == {"succeeded": 6} and not report.excused
    assert tq.result(ids[-1], timeout=5)["value"] == 7


def test_a_second_run_without_a_fault_is_a_violation(tq, ledger, monkeypatch) -> None:
    ids = [tq.enqueue(lt.noop, 1)]
    _run(tq, ledger, monkeypatch)
    # Forge a second, earlier run of the same job by another worker that finished ok.
    rec = next(r for r in Ledger(ledger.path).records() if r["ev"] == "start")
    ledger.write("start", job=ids[0], worker="ghost", attempt=0, **{"task": rec["task"]})
    with pytest.raises(AssertionError, match="ran again"):
        check_ledger(tq.redis, ids, ledger)
    # The same with a fault recorded between the runs... still a violation: it came after both.
    ledger.fault("sigkill")
    with pytest.raises(AssertionError, match="ran again"):
        check_ledger(tq.redis, ids, ledger)


def test_a_lost_or_unfinished_job_and_a_foreign_result_are_violations(tq, ledger, monkeypatch):
    ids = [tq.enqueue(lt.noop, 1), tq.enqueue(lt.noop, 2)]
    _run(tq, ledger, monkeypatch)
    tq.redis.hset(tq.keys.job(ids[1]), "attempts", 9)  # as if a later lease existed
    queued = tq.enqueue(lt.noop, 3)
    tq.redis.lrem(tq.keys.ready("default"), 0, ids[0])
    with pytest.raises(AssertionError) as err:
        check_ledger(tq.redis, [*ids, queued], ledger)
    text = str(err.value)
    assert f"job {queued} did not finish" in text
    assert f"job {ids[1]}: result of run" in text
    check_ledger(tq.redis, [queued], ledger, terminal=False)


def test_a_retry_after_an_error_is_not_a_duplicate(tq, ledger, monkeypatch) -> None:
    job = tq.enqueue_with(lt.crash, ("not a way to crash", "extra"), max_retries=1)
    _run(tq, ledger, monkeypatch)
    report = check_ledger(tq.redis, [job], ledger)
    assert report.runs == 2 and report.places == {"dead": 1}
