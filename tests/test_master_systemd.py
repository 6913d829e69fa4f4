"""systemd integration (sd_notify on a real socket, unit files) and the task-worker CLI."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from taskqueue.master.sdnotify import Notifier
from taskqueue.testing import wait_for

ROOT = Path(__file__).resolve().parent.parent


class Listener:
    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages

    def has(self, field: str):
        return lambda: any(field in m.split("\n") for m in self.drain())


def test_notifier_speaks_to_an_abstract_socket():
    name = f"@tq-test-{os.getpid()}"
    lis = Listener("\0" + name[1:])
    n = Notifier({"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "2000000"})
    assert n.watchdog_interval == 1.0
    n.ready("2 workers up")
    n.reloading()
    n.watchdog(100.0)
    n.watchdog(100.5)  # within half the interval: not sent again
    n.stopping()
    msgs = lis.drain()
    assert msgs[0] == "READY=1\nSTATUS=2 workers up"
    assert msgs[1].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert msgs[2:] == ["WATCHDOG=1", "STOPPING=1"]
    n.close()


def test_notifier_without_socket_is_silent():
    env = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    n = Notifier(env)
    assert not n.enabled and n.watchdog_interval is None and env == {}
    n.ready()


@pytest.mark.slow
def test_master_sends_ready_reloading_stopping_status_watchdog(redis_url, masters, tmp_path):
    lis = Listener(str(tmp_path / "notify.sock"))
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1000000"}
    m = masters(redis_url, "-w", "2", env=env)
    wait_for(lis.has("READY=1"), 20, "READY=1")
    wait_for(lis.has("WATCHDOG=1"), 5, "WATCHDOG=1")
    wait_for(lambda: any(x.startswith("STATUS=2 workers") for x in lis.drain()), 5, "STATUS=")
    m.send(signal.SIGHUP)
    wait_for(lis.has("RELOADING=1"), 10, "RELOADING=1")
    reload_msg = next(x for x in lis.drain() if x.startswith("RELOADING=1"))
    assert "MONOTONIC_USEC=" in reload_msg
    wait_for(lambda: sum("READY=1" in x for x in lis.drain()) >= 2, 20, "READY=1 after reload")
    m.send(signal.SIGTERM)
    assert m.wait(30) == 0
    assert lis.has("STOPPING=1")()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit", ["task-worker.service", "task-worker@.service"])
def test_units_pass_systemd_analyze_verify(unit, tmp_path):
    exe = Path(sys.executable).parent / "task-worker"
    text = (ROOT / "systemd" / unit).read_text()
    assert "/opt/taskqueue/.venv/bin/task-worker" in text
    name = unit.replace("@.", "@emails.")
    (tmp_path / name).write_text(text.replace("/opt/taskqueue/.venv/bin/task-worker", str(exe)))
    res = subprocess.run(["systemd-analyze", "verify", str(tmp_path / name)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    problems = [line for line in res.stderr.splitlines() if name in line]
    assert res.returncode == 0 and not problems, res.stderr


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TASKQUEUE_")}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "taskqueue.cli.worker", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env=full)  # fmt: skip


def test_cli_help_has_an_example():
    res = cli("worker", "--help")
    assert res.returncode == 0
    assert "example:" in res.stdout and "--pidfile" in res.stdout and "--burst" in res.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["worker", "-w", "zero"], "--workers"),
        (["worker", "--log-format", "xml"], "logging.format"),
        (["worker", "-c", "/nonexistent/x.toml"], "cannot read config file"),
        (["worker", "-i", "no_such_module_tq"], "cannot load the task code no_such_module_tq"),
    ],
)
def test_cli_usage_and_config_errors_exit_2(args, needle):
    res = cli(*args)
    assert res.returncode == 2, res
    assert needle in res.stderr


@pytest.mark.slow
def test_burst_exits_once_the_queues_are_empty(redis_url, tq, masters):
    from tests.tasks_for_master import noop

    ids = tq.enqueue_many([(noop, (i,)) for i in range(200)])
    m = masters(redis_url, "-w", "2", "--burst")
    assert m.wait(60) == 0
    assert all(tq.status(i).state == "succeeded" for i in ids)
    assert not m.pidfile.exists()


@pytest.mark.slow
def test_pidfile_is_written_and_a_second_master_refused(redis_url, masters):
    m = masters(redis_url, "-w", "1")
    wait_for(lambda: m.pidfile.exists() and m.pidfile.read_text().strip() == str(m.pid), 20,
             "pidfile")  # fmt: skip
    res = cli("worker", "-r", redis_url, "--pidfile", str(m.pidfile))
    assert res.returncode == 1 and "still running" in res.stderr
    start = time.monotonic()
    assert m.stop() == 0 and time.monotonic() - start < 30
    assert not m.pidfile.exists()
