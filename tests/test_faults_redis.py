"""Redis faults: a full Redis (maxmemory, noeviction), a refused password, a malformed URL.
Every Redis error is classified once (``taskqueue.redis_errors``); nothing dies of one."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
import redis
import redis.exceptions as rx

from taskqueue import TaskQueue
from taskqueue.client import BATCH
from taskqueue.errors import PartialEnqueue, RedisUnavailable, TaskQueueError
from taskqueue.redis_errors import BUG, FATAL, OUTAGE, classify, preflight
from taskqueue.testing import check_ledger, wait_for
from taskqueue.testing import ledger_tasks as lt
from taskqueue.testing.server import free_port
from taskqueue.worker import Worker

LEDGER = ("--import", "taskqueue.testing.ledger_tasks")


def full(client: redis.Redis) -> None:
    """Redis at maxmemory under noeviction: every write is refused with OOM, reads work."""
    client.config_set("maxmemory", 1)


def freed(client: redis.Redis) -> None:
    client.config_set("maxmemory", 0)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (rx.ConnectionError("refused"), OUTAGE),
        (rx.TimeoutError("slow"), OUTAGE),
        (rx.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), OUTAGE),
        (rx.BusyLoadingError("Redis is loading the dataset in memory"), OUTAGE),
        (rx.ReadOnlyError("You can't write against a read only replica."), OUTAGE),
        (rx.ResponseError("BUSY Redis is busy running a script."), OUTAGE),
        (
            rx.ResponseError(
                "ERR Error running script (call to f_1): @user_script:9: -OOM "
                "command not allowed when used memory > 'maxmemory'."
            ),
            OUTAGE,
        ),  # fmt: skip
        # A slot in migration (tests/test_reshard.py meets each under load):
        (rx.AskError("3999 127.0.0.1:6381"), OUTAGE),
        (rx.MovedError("3999 127.0.0.1:6381"), OUTAGE),
        (rx.ClusterError("TTL exhausted."), OUTAGE),
        (rx.ClusterError("something else"), BUG),
        (rx.AuthenticationError("invalid username-password pair"), FATAL),
        (rx.NoPermissionError("this user has no permissions"), FATAL),
        (rx.ResponseError("NOAUTH Authentication required."), FATAL),
        (rx.ResponseError("WRONGTYPE Operation against a key holding the wrong kind"), BUG),
        (IndexError("list index out of range"), BUG),
    ],
)
def test_every_redis_error_has_one_kind(exc: BaseException, kind: str) -> None:
    assert classify(exc) == kind


@pytest.mark.slow
def test_full_redis_under_a_running_master(redis_factory, masters, ledger) -> None:
    server = redis_factory()
    admin = server.client()
    tq = TaskQueue(server.url)
    ids = tq.enqueue_many([(lt.asleep, (0.2, i)) for i in range(200)])
    full(admin)
    # A master started on a full Redis waits for memory (it used to crash in 0.2 s).
    m = masters(server.url, "-w", "2", "--max-concurrent-tasks", "10", *LEDGER, env=ledger.env())
    wait_for(lambda: "maxmemory" in m.log(), 30, "the master waiting for memory")
    assert m.proc.poll() is None
    freed(admin)
    m.wait_workers(2, timeout=30)
    wait_for(lambda: b"succeeded" in [admin.hget(tq.keys.job(i), "state") for i in ids[:30]],
             60, "jobs running")  # fmt: skip
    # Full again while jobs run: acks, lease extensions and status records are refused.
    lost = m.log().count("lost Redis")
    full(admin)
    m.wait_log("lost Redis", count=lost + 1, timeout=30)
    freed(admin)
    wait_for(lambda: all(admin.hget(tq.keys.job(i), "state") == b"succeeded" for i in ids),
             120, "every job done once memory is freed")  # fmt: skip
    assert m.proc.poll() is None, "the master survived"
    # No lease lapsed (the outages were shorter than a lease): nothing ran twice, no late ack.
    report = check_ledger(admin, ids, ledger)
    assert not report.excused and report.runs == 200
    assert m.stop() == 0
    assert "Traceback" not in m.log()
    tq.close()


@pytest.mark.slow
def test_standalone_worker_keeps_its_leases_and_acks_through_a_full_redis(
    redis_factory, monkeypatch, ledger
) -> None:
    server = redis_factory()
    admin = server.client()
    monkeypatch.setenv("TASKQUEUE_LEDGER", str(ledger.path))
    tq = TaskQueue(server.url, broker_options={"lease_ms": 3000})
    long_ids = [tq.enqueue(lt.asleep, 6.0, i) for i in range(2)]
    short_ids = [tq.enqueue(lt.asleep, 0.5, i) for i in range(6)]
    worker = Worker(tq, max_concurrent_tasks=8)
    thread = threading.Thread(target=worker.run, kwargs={"burst": True}, daemon=True)
    thread.start()
    wait_for(lambda: len(worker.running) == 8, 20, "all jobs running")
    full(admin)
    # The short jobs finish while Redis is full: their acks must wait, not vanish.
    wait_for(lambda: worker.busy == 2, 20, "short jobs finished while Redis is full")
    # Full long enough that an extension was refused: the lease runs down below 2 s left.
    wait_for(lambda: lease_left(admin, tq, long_ids[0]) < 1800, 20, "an extension refused")
    deadline = admin.zscore(tq.keys.active("default"), long_ids[0])
    freed(admin)
    # The lease timer survived: the lease of a long job is extended again.
    wait_for(lambda: admin.zscore(tq.keys.active("default"), long_ids[0]) != deadline, 10,
             "a lease extension after the outage")  # fmt: skip
    thread.join(timeout=60)
    assert not thread.is_alive(), "burst mode ends: every ack settled"
    report = check_ledger(admin, long_ids + short_ids, ledger)
    assert report.runs == 8 and not report.excused
    tq.close()


def test_enqueue_many_at_oom_says_which_jobs_went_in(redis_factory) -> None:
    server = redis_factory()
    admin = server.client()
    tq = TaskQueue(server.url)
    used = admin.info("memory")["used_memory"]
    # Room for about 1,000 jobs with 4 KiB payloads (a few batches and their requests), not 3,000.
    admin.config_set("maxmemory", used + 7 * 1024 * 1024)
    calls = [(lt.noop, ("x" * 4096, i)) for i in range(3000)]
    with pytest.raises(PartialEnqueue) as err:
        tq.enqueue_many(calls)
    exc = err.value
    assert isinstance(exc, TaskQueueError)
    assert exc.enqueued and exc.not_enqueued and len(exc.enqueued) + len(exc.not_enqueued) == 3000
    assert len(exc.enqueued) % BATCH == 0  # whole batches: a script is all or nothing
    assert exc.not_enqueued[0] not in exc.enqueued
    freed(admin)
    assert tq.queue_lengths()["default"]["queued"] == len(exc.enqueued)
    for job_id in exc.enqueued[:5]:
        assert tq.status(job_id).state == "queued"
    assert not admin.exists(tq.keys.job(exc.not_enqueued[0]))
    tq.close()


def test_client_errors_are_taskqueue_errors(redis_factory) -> None:
    server = redis_factory()
    tq = TaskQueue(server.url)
    full(server.client())
    with pytest.raises(RedisUnavailable, match="maxmemory"):
        tq.enqueue_with("t", (1,), strict=False)
    freed(server.client())
    tq.close()
    down = TaskQueue(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(RedisUnavailable) as err:
        down.queue_lengths()
    assert isinstance(err.value, TaskQueueError) and isinstance(err.value.__cause__, rx.RedisError)
    down.close()


def lease_left(admin: redis.Redis, tq: TaskQueue, job_id: str) -> float:
    sec, usec = admin.time()
    return admin.zscore(tq.keys.active("default"), job_id) - (sec * 1000 + usec // 1000)


def _task_worker(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return _task_worker_args("-r", url, *extra)


def _task_worker_args(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskqueue.cli.worker", "worker", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_wrong_password_exits_2_with_one_clear_line(redis_factory) -> None:
    server = redis_factory()
    server.client().config_set("requirepass", "right-secret")
    url = f"redis://:wrong-secret@127.0.0.1:{server.port}/0"
    proc = _task_worker(url)
    assert proc.returncode == 2, proc.stderr
    assert "refused" in proc.stderr and "password" in proc.stderr
    assert "wrong-secret" not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    assert preflight(f"redis://:right-secret@127.0.0.1:{server.port}/0") is None


def test_malformed_url_exits_2_without_a_traceback() -> None:
    proc = _task_worker("redis://:pw@127.0.0.1:notaport/0")
    assert proc.returncode == 2, proc.stderr
    assert "invalid Redis URL" in proc.stderr and "Traceback" not in proc.stderr
    assert ":pw@" not in proc.stderr


def test_done_keys_get_a_ttl_after_result(client, worker_factory, reg) -> None:
    from taskqueue import task

    @task(name="add", registry=reg)
    def add(a, b):
        return a + b

    job = client.enqueue(add, 1, 2)
    with worker_factory():
        assert client.result(job, timeout=20) == 3
    done = client.keys.done(job)
    assert client.redis.exists(done) and 0 < client.redis.pttl(done) <= 60_000


def test_redis_url_file_keeps_the_password_out_of_the_process_list(redis_factory, tmp_path):
    import os

    server = redis_factory()
    server.client().config_set("requirepass", "s3cret-pw")
    url = f"redis://:s3cret-pw@127.0.0.1:{server.port}/0"
    url_file = tmp_path / "redis-url"
    url_file.write_text(url + "\n")
    os.chmod(url_file, 0o600)
    tq = TaskQueue(url)
    job = tq.enqueue(lt.noop, 7)
    cmd = [sys.executable, "-m", "taskqueue.cli.worker", "worker", "--redis-url-file",
           str(url_file), "--burst", "-w", "1", "--import", "taskqueue.testing.ledger_tasks"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKQUEUE_")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            text=True)  # fmt: skip
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert tq.status(job).state == "succeeded"
    assert "s3cret-pw" not in " ".join(cmd) + out
    # A bad file is a configuration error naming the setting, never showing the file's content.
    url_file.write_text("not a url with s3cret-pw")
    bad = _task_worker_args("--redis-url-file", str(url_file))
    assert bad.returncode == 2 and "redis.url_file" in bad.stderr
    assert "s3cret-pw" not in bad.stderr + bad.stdout
    tq.close()


def test_a_password_on_the_command_line_is_warned_about_and_retitled(redis_factory) -> None:
    server = redis_factory()
    server.client().config_set("requirepass", "s3cret-pw")
    proc = _task_worker(f"redis://:s3cret-pw@127.0.0.1:{server.port}/0", "--burst", "-w", "1")
    assert proc.returncode == 0, proc.stderr
    assert "--redis-url-file" in proc.stdout + proc.stderr
    assert "s3cret-pw" not in proc.stdout + proc.stderr
