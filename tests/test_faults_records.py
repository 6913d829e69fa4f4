"""Corrupt job records: the corrupt job goes to the dead letter with the reason, its neighbours
are untouched, and no script stops halfway (see the ordering rule in tests/test_scripts.py)."""

from __future__ import annotations

import pytest

from taskqueue.serialization import encode_result
from taskqueue.testing import assert_conserved, check_ledger, wait_for
from taskqueue.testing import ledger_tasks as lt

CORRUPTIONS = [
    ("attempts", "x", "'attempts' is 'x'"),
    ("timeout_ms", "soon", "'timeout_ms' is 'soon'"),
    ("max_retries", None, "'max_retries' is missing"),
    ("failures", "1.2.3", "'failures' is '1.2.3'"),
    ("payload", None, "'payload' is missing"),
]


def corrupt(tq, job_id: str, field: str, value: str | None) -> None:
    if value is None:
        tq.redis.hdel(tq.keys.job(job_id), field)
    else:
        tq.redis.hset(tq.keys.job(job_id), field, value)


@pytest.mark.parametrize(("field", "value", "reason"), CORRUPTIONS)
def test_one_corrupt_record_in_a_fetch_loses_no_neighbour(tq, field, value, reason) -> None:
    ids = [tq.enqueue_with("t", (i,), strict=False) for i in range(11)]
    corrupt(tq, ids[5], field, value)
    res = tq.run(tq.broker.fetch(["default"], 11, "tok", "w"))
    assert sorted(j.id for j in res.jobs) == sorted(ids[:5] + ids[6:])
    assert all(isinstance(j.timeout_ms, int) for j in res.jobs)
    st = tq.status(ids[5])
    assert st.state == "dead" and reason in st.error, st.error
    assert "CorruptRecord" in st.error
    assert assert_conserved(tq.redis, ids) == {"active": 10, "dead": 1}


def test_missing_timestamps_only_cost_the_wait_metric(tq) -> None:
    ids = [tq.enqueue_with("t", (i,), strict=False) for i in range(3)]
    tq.redis.hdel(tq.keys.job(ids[1]), "enqueued_ms", "due_ms")
    res = tq.run(tq.broker.fetch(["default"], 3, "tok", "w"))
    assert len(res.jobs) == 3


def test_corrupt_fields_do_not_stop_ack_fail_or_release_halfway(tq) -> None:
    ids = [tq.enqueue_with("t", (i,), strict=False, max_retries=1) for i in range(4)]
    jobs = {j.id: j for j in tq.run(tq.broker.fetch(["default"], 4, "tok", "w")).jobs}
    for field in ("ttl_ms", "started_ms", "history", "stalls"):
        for job_id in ids:
            tq.redis.hset(tq.keys.job(job_id), field, "{not json")
    assert tq.run(tq.broker.ack([(jobs[ids[0]], encode_result(1))])) == [True]
    assert tq.run(tq.broker.fail(jobs[ids[1]], "E: x", "", 10)) == "scheduled"
    released = tq.run(tq.broker.release([(ids[2], "default", "tok")], stalled=True))
    assert released == 1
    assert tq.run(tq.broker.release_worker("w")) >= 1
    assert_conserved(tq.redis, ids)


@pytest.mark.slow
def test_corrupt_record_among_good_ones_under_a_master(redis_url, tq, masters, ledger) -> None:
    ids = [tq.enqueue(lt.noop, i) for i in range(60)]
    bad = ids[30]
    corrupt(tq, bad, "attempts", "garbage")
    tq.redis.hset(tq.keys.job(ids[31]), "timeout_ms", "NaN-ish")
    m = masters(redis_url, "-w", "2", "--import", "taskqueue.testing.ledger_tasks",
                env=ledger.env())  # fmt: skip
    good = [i for i in ids if i not in (bad, ids[31])]
    wait_for(lambda: all(tq.status(i).state == "succeeded" for i in good), 60, "good jobs done")
    for job_id in (bad, ids[31]):
        st = tq.status(job_id)
        assert st.state == "dead" and "CorruptRecord" in st.error
    report = check_ledger(tq.redis, ids, ledger)
    assert report.places == {"succeeded": 58, "dead": 2} and report.runs == 58
    assert m.stop() == 0
    assert "Traceback" not in m.log()


@pytest.mark.parametrize("path", ["release", "release_stalled", "worker_exit", "worker_died",
                                  "recover"])  # fmt: skip
def test_cancel_is_honoured_on_every_release_path(tq, path) -> None:
    """A cancel asked while the job ran: however the job comes back, it ends cancelled and never
    runs again (a clean worker exit used to put it back in the queue)."""
    tq.broker.lease_ms = 1 if path == "recover" else 60_000
    job_id = tq.enqueue_with("t", (1,), strict=False)
    (job,) = tq.run(tq.broker.fetch(["default"], 1, "tok", "w")).jobs
    assert tq.cancel(job_id)
    if path.startswith("release"):
        tq.run(tq.broker.release([(job_id, "default", "tok")], stalled=path == "release_stalled"))
    elif path.startswith("worker"):
        tq.run(tq.broker.release_worker("w", stalled=path == "worker_died"))
    else:
        wait_for(lambda: tq.run(tq.broker.recover(["default"]))["cancelled"] == 1, 5, "recover")
    assert tq.status(job_id).state == "cancelled"
    assert assert_conserved(tq.redis, [job_id]) == {"cancelled": 1}
    assert tq.run(tq.broker.fetch(["default"], 1, "tok2", "w")).jobs == []


def test_an_unencodable_result_is_dead_lettered_at_once(client, worker_factory, reg) -> None:
    from taskqueue import task

    runs: list[int] = []

    @task(name="returns_object", registry=reg, max_retries=3, retry_backoff=0.01)
    def returns_object():
        runs.append(1)
        return object()

    job = client.enqueue(returns_object)
    with worker_factory():
        wait_for(lambda: client.status(job).state == "dead", 20, "dead letter")
    st = client.status(job)
    assert "result cannot be stored" in st.error and "object" in st.error
    assert len(runs) == 1, "the body (and its side effects) ran once, not once per retry"
