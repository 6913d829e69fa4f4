"""tqctl against real masters (two of them, to prove targeting and --all) on a real Redis."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
import pytest

from taskqueue import TaskQueue
from taskqueue.cli.tqctl import main
from taskqueue.testing import wait_for

ROOT = Path(__file__).resolve().parent.parent


def ctl(capsys, url: str, *argv: str) -> tuple[int, str, str]:
    code = main(["-r", url, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def alive_workers(m) -> int:
    return sum(1 for p in m.children() if p.status() != psutil.STATUS_ZOMBIE)


@pytest.mark.slow
def test_commands_reach_the_right_master_and_all(redis_url, masters, capsys) -> None:
    a = masters(redis_url, "-w", "1")
    b = masters(redis_url, "-w", "1")
    a.wait_workers(1)
    b.wait_workers(1)

    code, out, _ = ctl(capsys, redis_url, "ping")
    assert code == 3 and out == "", "two masters and no target: refuse"
    code, out, _ = ctl(capsys, redis_url, "ping", "--all")
    assert code == 0 and f"{a.id}: ok: pong" in out and f"{b.id}: ok: pong" in out

    code, out, _ = ctl(capsys, redis_url, "scale", "3", "--master", a.id)
    assert code == 0 and a.id in out and b.id not in out
    a.wait_workers(3)
    wait_for(lambda: alive_workers(a) == 3, what="3 real worker processes")
    assert alive_workers(b) == 1

    code, _, _ = ctl(capsys, redis_url, "scale", "-2", "--master", a.id)
    assert code == 0
    a.wait_workers(1)
    wait_for(lambda: alive_workers(a) == 1, what="scale down to 1 process")

    code, _, _ = ctl(capsys, redis_url, "scale", "+1", "--all")
    a.wait_workers(2)
    b.wait_workers(2)

    code, out, _ = ctl(capsys, redis_url, "quiet", "--master", b.id)
    assert code == 0
    wait_for(lambda: b.status()["quiet"], what="quiet flag in the status record")
    code, _, _ = ctl(capsys, redis_url, "resume", "--master", b.id)
    wait_for(lambda: not b.status()["quiet"], what="resumed")

    code, out, _ = ctl(capsys, redis_url, "stop", "--all")
    assert code == 0
    assert a.wait(30) == 0 and b.wait(30) == 0


@pytest.mark.slow
def test_status_json_has_the_documented_fields_and_no_password(redis_factory, masters, capsys):
    server = redis_factory()
    server.client().config_set("requirepass", "hunter2")
    url = f"redis://default:hunter2@127.0.0.1:{server.port}/0"
    m = masters(url, "-w", "2")
    m.wait_workers(2)
    TaskQueue(url).enqueue_with("m.noop", (1,), strict=False)

    code, out, err = ctl(capsys, url, "status", "--json")
    assert code == 0 and "hunter2" not in out + err
    snap = json.loads(out)
    assert set(snap) == {"masters", "queues", "dead", "other_namespaces"}
    rec = snap["masters"][0]
    for field in ("id", "host", "pid", "version", "started", "queues", "config", "desired",
                  "actual", "quiet", "draining", "workers"):  # fmt: skip
        assert field in rec
    for field in (
        "index",
        "pid",
        "started",
        "state",
        "rss",
        "uss",
        "cpu",
        "busy",
        "slots",
        "jobs",
        "processed",
    ):
        assert field in rec["workers"][0]
    assert 0 < time.time() - rec["workers"][0]["started"] < 3600  # a worker's uptime
    assert {"queue", "queued", "scheduled", "active", "paused", "succeeded_per_min"} <= set(
        snap["queues"][0]
    )
    code, out, err = ctl(capsys, url, "status")
    assert code == 0 and "hunter2" not in out + err and m.id in out
    code, out, err = ctl(capsys, url, "config", "show")
    assert "hunter2" not in out + err


@pytest.mark.slow
def test_drain_wait_returns_after_in_flight_jobs_finished_and_the_master_exited(
    redis_url, masters, capsys
) -> None:
    m = masters(redis_url, "-w", "1")
    m.wait_workers(1)
    client = TaskQueue(redis_url)
    ids = [client.enqueue_with("m.sleep", (1.0, i), strict=False) for i in range(3)]
    wait_for(lambda: all(client.status(i).state == "active" for i in ids), what="jobs running")
    code, out, _ = ctl(capsys, redis_url, "drain", "--wait", "--timeout", "60")
    assert code == 0 and "drained" in out
    assert m.wait(10) == 0, "the master exits cleanly (its record goes just before it exits)"
    assert [client.status(i).state for i in ids] == ["succeeded"] * 3


@pytest.mark.slow
def test_a_command_to_a_stopped_master_times_out_clearly(redis_url, masters, capsys) -> None:
    import signal

    m = masters(redis_url, "-w", "1")
    m.wait_workers(1)
    m.send(signal.SIGSTOP)
    try:
        code, out, err = ctl(capsys, redis_url, "ping", "--master", m.id, "--timeout", "1")
        assert code == 4 and "did not answer 'ping' within 1s" in err
    finally:
        m.send(signal.SIGCONT)
    code, out, err = ctl(capsys, redis_url, "ping", "--master", "nohost:1")
    assert code == 3 and "no running master 'nohost:1'" in err


def test_queue_job_and_dead_letter_commands(redis_url, capsys) -> None:
    client = TaskQueue(redis_url)
    code, out, _ = ctl(
        capsys, redis_url, "enqueue", "demo.add", "--args", "[1, 2]", "--queue", "q1"
    )
    job_id = out.strip()
    assert code == 0 and client.status(job_id).queue == "q1"
    code, out, _ = ctl(capsys, redis_url, "queues", "--json")
    assert json.loads(out)[0]["queued"] == 1
    assert ctl(capsys, redis_url, "queue", "pause", "q1")[0] == 0
    assert client.queue_lengths()["q1"]["paused"] == 1
    assert ctl(capsys, redis_url, "queue", "resume", "q1")[0] == 0
    code, out, _ = ctl(capsys, redis_url, "job", job_id, "--json")
    assert json.loads(out)["state"] == "queued"
    assert ctl(capsys, redis_url, "cancel", job_id)[0] == 0
    assert ctl(capsys, redis_url, "cancel", job_id)[0] == 1
    assert ctl(capsys, redis_url, "queue", "purge", "q1")[0] == 2, "purge needs --yes"
    code, _, err = ctl(capsys, redis_url, "enqueue", "x", "--args", "{bad")
    assert code == 2 and "JSON" in err

    dead = client.enqueue_with("t", (1,), strict=False, max_retries=0)
    job = client.run(client.broker.fetch(["default"], 1, "t", "w")).jobs[0]
    client.run(client.broker.fail(job, "ValueError: boom", "", 0))
    code, out, _ = ctl(capsys, redis_url, "dead", "--json")
    assert json.loads(out)[0]["id"] == dead and json.loads(out)[0]["error"] == "ValueError: boom"
    code, out, _ = ctl(capsys, redis_url, "dead", "retry", dead)
    assert code == 0 and client.status(dead).state == "queued"
    assert ctl(capsys, redis_url, "dead", "delete", "--all")[0] == 2, "delete --all needs --yes"
    code, _, err = ctl(capsys, redis_url, "job", "nope")
    assert code == 1 and "no job 'nope'" in err


def test_config_check_reports_the_culprit(tmp_path, redis_url, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[autoscaler]\nmin_workers = 5\nmax_workers = 2\n")
    code, _, err = ctl(capsys, redis_url, "config", "check", str(bad))
    assert code == 2 and "bad.toml" in err and "min_workers" in err
    code, out, _ = ctl(capsys, redis_url, "config", "check", str(ROOT / "conf" / "task-queue.toml"))
    assert code == 0 and "valid" in out


def test_every_subcommand_has_help_with_an_example(capsys) -> None:
    for argv in (
        ["--help"],
        ["status", "--help"],
        ["drain", "--help"],
        ["dead", "retry", "--help"],
    ):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
        assert "example:" in capsys.readouterr().out


def test_man_pages_cover_every_subcommand() -> None:
    from taskqueue.cli.tqctl import COMMANDS

    page = (ROOT / "man" / "tqctl.1").read_text()
    missing = [c for c in COMMANDS if f"tqctl {c}" not in page]
    assert not missing, f"man/tqctl.1 is stale (run `make man`): missing {missing}"
    assert "graceful\\-timeout" in (ROOT / "man" / "task-worker.1").read_text()


def test_top_renders_a_live_view(redis_url, capsys) -> None:
    TaskQueue(redis_url).enqueue_with("t", (1,), strict=False, queue="q9")
    code, out, _ = ctl(capsys, redis_url, "top", "--interval", "0.01", "--iterations", "2")
    assert code == 0
    assert out.count("QUEUES") == 2 and "q9" in out and "(none running)" in out
