"""The execution ledger catches what it must: a second run without a fault, a lost job, a late
ack. And it excuses what it must: a retry after a failure, a run hit by an injected fault. And
``recovery`` times what it must, on a hand-written ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskqueue.testing import Ledger, check_ledger
from taskqueue.testing import ledger_tasks as lt
from taskqueue.testing.ledger import recovery
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


# A hand-written ledger: w1 (pid 100) is SIGKILLed at 10.5 with jobs a, b, k running; Redis is
# killed at 20 and back at 21; a partition is marked at 30 and healed at 32; a master is stopped
# from 40 to 45 (a window). "S" lines are starts, "F" finishes.
RECOVERY_LEDGER = """
S 10.0  a w1 1 100
S 10.0  b w1 1 100
S 10.0  c w2 1 200
S 10.1  e w1 1 100
F 10.2  e w1 1 error
S 10.3  k w1 1 100
fault 10.5 sigkill 100
S 10.55 s w1 1 100
F 10.6  s w1 1 ok
F 10.6  c w2 1 ok
F 10.7  k w1 1 cancelled
S 11.4  k w2 2 200
F 11.45 k w2 2 ok
S 10.8  e w2 2 200
S 11.0  a w2 2 200
S 11.2  d w2 1 200
F 11.3  d w2 1 ok
F 11.5  a w2 2 ok
F 11.9  e w2 2 ok
S 12.0  b w3 2 300
F 12.2  b w3 2 ok
fault 20.0 redis_sigkill -
S 20.01 f w2 1 200
F 20.02 f w2 1 ok
healed 21.0 redis_sigkill
S 21.1  g w3 1 300
F 21.3  g w3 1 ok
mark 30.0 partition -
healed 32.0 partition
S 32.05 h w3 1 300
F 32.5  h w3 1 ok
S 39.0  i w1 1 400
S 43.0  i w2 2 200
F 44.0  i w2 2 ok
window 40.0 45.0 sigstop_master
"""


def _write_ledger(path: Path, text: str) -> Ledger:
    """Write ``text`` (the short form above) as a ledger file of JSON lines."""
    lines = []
    for line in text.strip().splitlines():
        ev, t, *rest = line.split()
        rec: dict = {"ev": ev, "t": float(t)}
        if ev in ("S", "F"):
            job, worker, attempt, last = rest
            rec |= {"ev": "start" if ev == "S" else "finish", "job": job, "worker": worker,
                    "attempt": int(attempt), "pid": int(last) if ev == "S" else 1}  # fmt: skip
            rec |= {"outcome": last} if ev == "F" else {}
        elif ev in ("fault", "mark"):
            rec |= {"kind": rest[0], "target": None if rest[1] == "-" else int(rest[1])}
        elif ev == "healed":
            rec |= {"kind": rest[0]}
        else:  # a fault_window: its start, its end and its kind
            rec |= {"ev": "fault", "since": float(t), "t": float(rest[0]), "kind": rest[1],
                    "target": None}  # fmt: skip
        lines.append(json.dumps(rec) + "\n")
    path.write_text("".join(lines))
    return Ledger(path)


def test_recovery_times_from_a_hand_written_ledger(tmp_path: Path) -> None:
    ledger = _write_ledger(tmp_path / "ledger.jsonl", RECOVERY_LEDGER)
    kill = recovery(ledger, "sigkill")
    # a, b and k, hit by the kill, ran again 0.5, 1.5 and 0.9 s after it (k, cancelled after
    # the kill, was cut short by it); e's second run is a retry after an error that came before
    # the kill. Restored: d finished first (11.3), not a (11.5); s ran in the killed process
    # and c started before the kill, so neither counts.
    assert kill.faults == 1 and sorted(kill.reruns) == pytest.approx([0.5, 0.9, 1.5])
    assert kill.restored == pytest.approx([0.8])
    assert kill.summary() == {"faults": 1, "reruns": 3, "rerun_median_s": 0.9,
                              "rerun_max_s": 1.5, "restored_median_s": 0.8,
                              "restored_max_s": 0.8}  # fmt: skip
    # f started after the Redis kill but before the repair: g's finish counts.
    outage = recovery(ledger, "redis_sigkill")
    assert outage.reruns == [] and outage.restored == pytest.approx([1.3])
    # A mark excuses nothing, and is timed from the mark to h, started after the heal.
    assert [f["kind"] for f in ledger.faults()] == ["sigkill", "redis_sigkill", "sigstop_master"]
    assert recovery(ledger, "partition").restored == pytest.approx([2.5])
    # A window is timed from its start: i ran again 3 s in, and finished 4 s in.
    stop = recovery(ledger, "sigstop_master")
    assert stop.reruns == pytest.approx([3.0]) and stop.restored == pytest.approx([4.0])
    none = recovery(ledger, "tcp_reset").summary()
    assert none == {"faults": 0, "reruns": 0, "rerun_median_s": None, "rerun_max_s": None,
                    "restored_median_s": None, "restored_max_s": None}  # fmt: skip
