"""The master's signal table and control commands, on real processes and a real Redis."""

from __future__ import annotations

import json
import signal
import threading
import uuid

import pytest

from taskqueue import TaskQueue
from taskqueue.keys import Keys
from taskqueue.testing import assert_conserved, wait_for
from tests.tasks_for_master import asleep, noop, pid, sleep

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def states(tq: TaskQueue, ids: list[str]) -> list[str]:
    pipe = tq.redis.pipeline(transaction=False)
    for i in ids:
        pipe.hget(tq.keys.job(i), "state")
    return [(s or b"?").decode() for s in pipe.execute()]


def all_in(tq: TaskQueue, ids: list[str], state: str = "succeeded"):
    return lambda: all(s == state for s in states(tq, ids))


def test_term_lets_running_tasks_finish_and_fetches_nothing_new(redis_url, tq, masters):
    m = masters(redis_url, "-w", "2", "--max-concurrent-tasks", "2", "--graceful-timeout", "30")
    m.wait_workers(2)
    ids = [tq.enqueue(sleep, 2.0, i) for i in range(8)]
    wait_for(lambda: sum(s == "active" for s in states(tq, ids)) == 4, 10, "4 jobs running")
    m.send(signal.SIGTERM)
    assert m.wait(30) == 0
    st = states(tq, ids)
    assert st.count("succeeded") == 4 and st.count("queued") == 4, st
    assert "STOPPING" not in m.log()  # no NOTIFY_SOCKET: nothing sent
    assert_conserved(tq.redis, ids)
    assert not tq.redis.exists(Keys().master(m.id))


def test_term_with_short_grace_puts_jobs_back_without_spending_an_attempt(redis_url, tq, masters):
    m = masters(redis_url, "-w", "1", "--max-concurrent-tasks", "3", "--graceful-timeout", "0.5")
    m.wait_workers(1)
    ids = [tq.enqueue(sleep, 20.0, i) for i in range(3)]
    wait_for(all_in(tq, ids, "active"), 10, "3 jobs running")
    m.send(signal.SIGTERM)
    assert m.wait(20) == 0
    assert states(tq, ids) == ["queued"] * 3
    for i in ids:
        job = tq.redis.hgetall(tq.keys.job(i))
        assert job.get(b"failures", b"0") == b"0" and job[b"attempts"] == b"0", job
    assert assert_conserved(tq.redis, ids) == {"queued": 3}


def test_second_int_is_a_fast_stop(redis_url, tq, masters):
    m = masters(redis_url, "-w", "1", "--graceful-timeout", "60")
    m.wait_workers(1)
    ids = [tq.enqueue(asleep, 30.0, i) for i in range(2)]
    wait_for(all_in(tq, ids, "active"), 10, "jobs running")
    m.send(signal.SIGINT)
    m.wait_log("graceful stop (SIGINT)")
    m.send(signal.SIGINT)
    assert m.wait(20) == 0
    assert states(tq, ids) == ["queued", "queued"]
    assert_conserved(tq.redis, ids)


def test_hup_replaces_every_worker_without_losing_jobs(redis_url, tq, masters):
    m = masters(redis_url, "-w", "2", "--max-concurrent-tasks", "4")
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
    m.send(signal.SIGHUP)
    m.wait_log("reload done")
    new = set(m.wait_workers(2, exclude=old))
    wait_for(all_in(tq, ids), 60, "every job succeeded")
    stop_sampling.set()
    sampler.join()
    busy = [n for n in done_at if n < len(ids)]  # samples taken while work remained
    stalls = [b for a, b in zip(busy, busy[1:], strict=False) if b == a]
    assert len(busy) >= 2 and not stalls, f"throughput dropped to zero during the reload: {done_at}"
    ran_on = {tq.result(i) for i in [tq.enqueue(pid, 0.2) for _ in range(8)]}
    assert ran_on <= new
    assert m.stop() == 0
    assert assert_conserved(tq.redis, ids) == {"succeeded": 600}


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


def test_tstp_stops_fetching_and_cont_resumes(redis_url, tq, masters):
    m = masters(redis_url, "-w", "1")
    m.wait_workers(1)
    m.send(signal.SIGTSTP)
    wait_for(lambda: (m.status() or {}).get("quiet"), 10, "quiet in the status record")
    ids = [tq.enqueue(noop, i) for i in range(20)]
    wait_for(lambda: tq.redis.llen(tq.keys.ready("default")) == 20, 5, "queue grows")
    assert states(tq, ids) == ["queued"] * 20  # checked after the fact: nothing ran
    m.send(signal.SIGCONT)
    wait_for(all_in(tq, ids), 20, "jobs done after CONT")
    assert m.stop() == 0


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


def test_control_commands_use_the_signal_code_paths(redis_url, tq, masters):
    m = masters(redis_url, "-w", "1")
    m.wait_workers(1)
    assert tq.redis.zscore(tq.keys.masters, m.id) is not None
    assert command(tq, m.id, "ping")["message"] == "pong"
    st = command(tq, m.id, "status")["data"]
    assert st["pid"] == m.pid and st["desired"] == 1 and st["workers"][0]["slots"] == 10
    assert "***" in json.dumps(st["config"]) or "@" not in st["config"]["redis"]["url"]
    assert command(tq, m.id, "scale", n=3)["ok"]
    m.wait_workers(3)
    assert command(tq, m.id, "scale", delta=-1)["ok"]
    m.wait_workers(2)
    assert not command(tq, m.id, "scale", n=0)["ok"]
    assert not command(tq, m.id, "bogus")["ok"]
    assert command(tq, m.id, "quiet")["ok"]
    wait_for(lambda: m.status()["quiet"], 5, "quiet")
    assert command(tq, m.id, "resume")["ok"]
    assert command(tq, m.id, "stop", fast=False)["ok"]
    assert m.wait(30) == 0
    assert tq.redis.zscore(tq.keys.masters, m.id) is None
