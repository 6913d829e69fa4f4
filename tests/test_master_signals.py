"""The master's signal table and control commands, on real processes and a real Redis. Every
test that runs jobs runs them through ledger-recorded tasks and ends with ``check_ledger``: a
signal recorded as a fault of the master's workers before it is sent, and no run excused."""

from __future__ import annotations

import json
import signal
import threading
import uuid

import pytest

from taskqueue import TaskQueue
from taskqueue.keys import Keys
from taskqueue.testing import assert_conserved, wait_for
from taskqueue.testing.ledger import Ledger, check_ledger
from taskqueue.testing.ledger_tasks import asleep, noop, sleep
from tests.tasks_faults import pid

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
#: Recorded tasks: ``ledger.*`` and ``faults.*``.
TASKS = "tests.tasks_faults"


def states(tq: TaskQueue, ids: list[str]) -> list[str]:
    pipe = tq.redis.pipeline(transaction=False)
    for i in ids:
        pipe.hget(tq.keys.job(i), "state")
    return [(s or b"?").decode() for s in pipe.execute()]


def all_in(tq: TaskQueue, ids: list[str], state: str = "succeeded"):
    return lambda: all(s == state for s in states(tq, ids))


def faulted(ledger: Ledger, m, kind: str) -> None:  # noqa: ANN001 - a MasterProc
    """Record ``kind`` as a fault of each worker of ``m``, before the test does it."""
    for p in m.worker_pids(state=None):
        ledger.fault(kind, pid=p)


def signal_master(ledger: Ledger, m, sig: signal.Signals) -> None:  # noqa: ANN001
    faulted(ledger, m, f"{sig.name} to the master")
    m.send(sig)


def started(ledger: Ledger, ids: list[str]):
    """All of ``ids`` started running: leased ("active") is not enough, a stop puts a job that
    was leased but not started back unstarted."""
    return lambda: set(ids) <= ledger.runs().keys()


def no_run_finished_ok(ledger: Ledger) -> bool:
    return all(r.outcome != "ok" for runs in ledger.runs().values() for r in runs)


def test_term_lets_running_tasks_finish_and_fetches_nothing_new(redis_url, tq, masters, ledger):
    m = masters(redis_url, "-w", "2", "--max-concurrent-tasks", "2", "--graceful-timeout", "30",
                env=ledger.env(), imports=TASKS)  # fmt: skip
    m.wait_workers(2)
    ids = [tq.enqueue(sleep, 2.0, i) for i in range(8)]
    wait_for(lambda: len(ledger.runs()) == 4, 10, "4 jobs running")
    signal_master(ledger, m, signal.SIGTERM)
    assert m.wait(30) == 0
    st = states(tq, ids)
    assert st.count("succeeded") == 4 and st.count("queued") == 4, st
    assert "STOPPING" not in m.log()  # no NOTIFY_SOCKET: nothing sent
    assert_conserved(tq.redis, ids)
    assert not tq.redis.exists(Keys().master(m.id))
    report = check_ledger(tq.redis, ids, ledger, tq.keys, terminal=False)
    assert report.runs == 4 and not report.excused  # the 4 queued jobs never started


def test_term_with_short_grace_puts_jobs_back_without_spending_an_attempt(redis_url, tq, masters,
                                                                         ledger):  # fmt: skip
    m = masters(redis_url, "-w", "1", "--max-concurrent-tasks", "3", "--graceful-timeout", "0.5",
                env=ledger.env(), imports=TASKS)  # fmt: skip
    m.wait_workers(1)
    ids = [tq.enqueue(sleep, 20.0, i) for i in range(3)]
    wait_for(started(ledger, ids), 10, "3 jobs running")
    signal_master(ledger, m, signal.SIGTERM)
    assert m.wait(20) == 0
    assert states(tq, ids) == ["queued"] * 3
    for i in ids:
        job = tq.redis.hgetall(tq.keys.job(i))
        assert job.get(b"failures", b"0") == b"0" and job[b"attempts"] == b"0", job
    assert assert_conserved(tq.redis, ids) == {"queued": 3}
    report = check_ledger(tq.redis, ids, ledger, tq.keys, terminal=False)
    assert report.runs == 3 and no_run_finished_ok(ledger)  # each cut once, none acked


def test_second_int_is_a_fast_stop(redis_url, tq, masters, ledger):
    m = masters(redis_url, "-w", "1", "--graceful-timeout", "60", env=ledger.env(), imports=TASKS)
    m.wait_workers(1)
    ids = [tq.enqueue(asleep, 30.0, i) for i in range(2)]
    wait_for(started(ledger, ids), 10, "jobs running")
    signal_master(ledger, m, signal.SIGINT)
    m.wait_log("graceful stop (SIGINT)")
    signal_master(ledger, m, signal.SIGINT)
    assert m.wait(20) == 0
    assert states(tq, ids) == ["queued", "queued"]
    assert_conserved(tq.redis, ids)
    report = check_ledger(tq.redis, ids, ledger, tq.keys, terminal=False)
    assert report.runs == 2 and no_run_finished_ok(ledger)  # both cut short, none acked


def test_hup_replaces_every_worker_without_losing_jobs(redis_url, tq, masters, ledger):
    m = masters(redis_url, "-w", "2", "--max-concurrent-tasks", "4", env=ledger.env(),
                imports=TASKS)  # fmt: skip
    old = set(m.wait_workers(2))
    ids = [tq.enqueue(asleep, 0.05, i) for i in range(600)]
    wait_for(lambda: "succeeded" in states(tq, ids[:50]), 10, "jobs running")
    # Sample progress through the reload: jobs must keep finishing while generations swap.
    done_at: list[int] = []
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.5):
            done_at.append(states(tq, ids).count("succeeded"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    signal_master(ledger, m, signal.SIGHUP)
    m.wait_log("reload done")
    new = set(m.wait_workers(2, exclude=old))
    wait_for(all_in(tq, ids), 60, "every job succeeded")
    stop_sampling.set()
    sampler.join()
    busy = [n for n in done_at if n < len(ids)]  # samples taken while work remained
    stalls = [b for a, b in zip(busy, busy[1:], strict=False) if b == a]
    assert len(busy) >= 2 and not stalls, f"throughput dropped to zero during the reload: {done_at}"
    on_new = [tq.enqueue(pid, 0.2) for _ in range(8)]
    ran_on = {tq.result(i)["value"] for i in on_new}
    assert ran_on <= new
    assert m.stop() == 0
    assert assert_conserved(tq.redis, ids) == {"succeeded": 600}
    report = check_ledger(tq.redis, ids + on_new, ledger, tq.keys)
    assert report.runs == 608 and not report.excused  # the reload ran no job twice


def test_hup_with_a_bad_config_keeps_the_old_workers(redis_url, tq, masters, tmp_path):
    conf = tmp_path / "w.toml"
    conf.write_text("[workers]\nmax_concurrent_tasks = 3\n")
    m = masters(redis_url, "-w", "1", "-c", str(conf))
    old = m.wait_workers(1)
    conf.write_text("[workers]\nmax_concurrent_tasks = -5\n")
    m.send(signal.SIGHUP)
    m.wait_log("reload (SIGHUP) rejected")
    assert m.wait_workers(1) == old
    assert m.stop() == 0


def test_ttin_ttou_change_the_worker_count(redis_url, masters):
    m = masters(redis_url, "-w", "2")
    m.wait_workers(2)
    m.send(signal.SIGTTIN)
    m.wait_workers(3)
    m.send(signal.SIGTTOU)
    m.wait_workers(2)  # standard signals sent back to back may merge into one: one at a time
    m.send(signal.SIGTTOU)
    m.wait_workers(1)
    assert m.stop() == 0


def test_tstp_stops_fetching_and_cont_resumes(redis_url, tq, masters, ledger):
    m = masters(redis_url, "-w", "1", env=ledger.env(), imports=TASKS)
    m.wait_workers(1)
    signal_master(ledger, m, signal.SIGTSTP)
    wait_for(lambda: (m.status() or {}).get("quiet"), 10, "quiet in the status record")
    ids = [tq.enqueue(noop, i) for i in range(20)]
    wait_for(lambda: tq.redis.llen(tq.keys.ready("default")) == 20, 5, "queue grows")
    assert states(tq, ids) == ["queued"] * 20  # checked after the fact: nothing ran
    assert not ledger.runs()  # not even started
    signal_master(ledger, m, signal.SIGCONT)
    wait_for(all_in(tq, ids), 20, "jobs done after CONT")
    assert m.stop() == 0
    report = check_ledger(tq.redis, ids, ledger, tq.keys)
    assert report.runs == 20 and not report.excused


def test_usr2_dumps_the_stacks_of_master_and_workers(redis_url, masters):
    m = masters(redis_url, "-w", "2")
    m.wait_workers(2)
    m.send(signal.SIGUSR2)
    m.wait_log("stack dump (SIGUSR2)")
    m.wait_log("Current thread", count=3)  # master + 2 workers (faulthandler format)
    assert m.stop() == 0


def command(tq: TaskQueue, master_id: str, cmd: str, **args) -> dict:
    req = uuid.uuid4().hex
    tq.redis.rpush(tq.keys.control(master_id), json.dumps({"id": req, "cmd": cmd, "args": args}))
    _, raw = tq.redis.blpop([tq.keys.reply(req)], timeout=15) or (None, None)
    assert raw is not None, f"no reply to {cmd}"
    return json.loads(raw)


def test_control_commands_use_the_signal_code_paths(redis_url, tq, masters, ledger):
    m = masters(redis_url, "-w", "1", env=ledger.env(), imports=TASKS)
    m.wait_workers(1)
    assert tq.redis.zscore(tq.keys.masters, m.id) is not None
    assert command(tq, m.id, "ping")["message"] == "pong"
    st = command(tq, m.id, "status")["data"]
    assert st["pid"] == m.pid and st["desired"] == 1 and st["workers"][0]["slots"] == 10
    assert "***" in json.dumps(st["config"]) or "@" not in st["config"]["redis"]["url"]
    assert command(tq, m.id, "scale", n=3)["ok"]
    m.wait_workers(3)
    faulted(ledger, m, "scale -1 command")
    assert command(tq, m.id, "scale", delta=-1)["ok"]
    m.wait_workers(2)
    assert not command(tq, m.id, "scale", n=0)["ok"]
    assert not command(tq, m.id, "bogus")["ok"]
    faulted(ledger, m, "quiet command")
    assert command(tq, m.id, "quiet")["ok"]
    wait_for(lambda: m.status()["quiet"], 5, "quiet")
    quiet = [tq.enqueue(noop, i) for i in range(10)]  # like TSTP: nothing is fetched
    wait_for(lambda: tq.redis.llen(tq.keys.ready("default")) == 10, 5, "queue grows")
    assert states(tq, quiet) == ["queued"] * 10 and not ledger.runs()
    faulted(ledger, m, "resume command")
    assert command(tq, m.id, "resume")["ok"]
    wait_for(all_in(tq, quiet), 20, "jobs done after resume")
    running = [tq.enqueue(sleep, 1.0, i) for i in range(2)]
    wait_for(started(ledger, running), 10, "jobs running")
    faulted(ledger, m, "stop command (graceful)")
    assert command(tq, m.id, "stop", fast=False)["ok"]
    assert m.wait(30) == 0
    assert tq.redis.zscore(tq.keys.masters, m.id) is None
    assert states(tq, running) == ["succeeded"] * 2  # like TERM: running jobs finish
    report = check_ledger(tq.redis, quiet + running, ledger, tq.keys)
    assert report.runs == 12 and not report.excused
