"""Credentials beyond the URL: the servers' ACL user and password (``redis.username`` /
``redis.password``) and the Sentinels' own (``redis.sentinel_username`` /
``redis.sentinel_password``), on a real Sentinel set where every process wants a password.
They reach every connection, survive a failover, and are never shown."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from taskqueue import AsyncTaskQueue, TaskQueue
from taskqueue.config import TaskQueueConfig
from taskqueue.connection import RedisSettings
from taskqueue.errors import ConfigError, RedisRefused, RedisUnavailable
from taskqueue.redis_url import BadRedisUrl
from taskqueue.testing import wait_for
from taskqueue.testing.ledger import Ledger, check_ledger
from taskqueue.testing.sentinel import LocalSentinel, SentinelAuth
from taskqueue.testing.server import RedisServer

AUTH = SentinelAuth()
SECRETS = (AUTH.password, AUTH.user_password, AUTH.sentinel_password, AUTH.sentinel_user_password)
ENV = {
    "TASKQUEUE_REDIS__USERNAME": AUTH.user,
    "TASKQUEUE_REDIS__PASSWORD": AUTH.user_password,
    "TASKQUEUE_REDIS__SENTINEL_USERNAME": AUTH.sentinel_user,
    "TASKQUEUE_REDIS__SENTINEL_PASSWORD": AUTH.sentinel_user_password,
}


@pytest.fixture(scope="module")
def locked() -> Iterator[LocalSentinel]:
    """A primary, a replica and 3 Sentinels, each requiring a password (``SentinelAuth``)."""
    s = LocalSentinel(auth=AUTH).start()
    yield s
    s.close()


@pytest.fixture
def locked_url(locked: LocalSentinel) -> str:
    locked.heal()
    locked.flush()
    return locked.url


def settings_from_env(url: str, **overrides: str) -> RedisSettings:
    env = {**ENV, "REDIS_URL": url, **overrides}
    return RedisSettings.from_config(TaskQueueConfig.load(env=env))


def tqctl(url: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKQUEUE_")}
    done = subprocess.run([sys.executable, "-m", "taskqueue.cli.tqctl", "-r", url, *args],
                          env={**env, **ENV}, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def users_of_taskqueue(server) -> set[str]:  # noqa: ANN001 - a RedisServer
    """The ACL users of the taskqueue connections (``CLIENT SETNAME tq:...``) on ``server``."""
    with server.client() as admin:
        return {c["user"] for c in admin.client_list() if c.get("name", "").startswith("tq:")}


def retried(call: Callable[[], Any]) -> Any:
    """``call()``, tried again while Redis is unavailable (for at most 60 s)."""

    def attempt() -> tuple[Any] | None:
        try:
            return (call(),)
        except RedisUnavailable:
            return None

    return wait_for(attempt, 60, "the call to get through the failover")[0]


def shows_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.slow
def test_an_authenticated_sentinel_set_follows_a_failover(locked: LocalSentinel, locked_url: str,
                                                          masters, ledger: Ledger):  # fmt: skip
    """The settings come from the environment, reach the master, its workers, the client, the
    asyncio client and tqctl; the primary is killed and all of them follow the Sentinels to
    the new one, which they log in to as the ACL user. Every job runs through the ledger."""
    settings = settings_from_env(locked_url)
    m = masters(locked_url, "-w", "1", env={**ENV, **ledger.env()}, settings=settings,
                imports="tests.tasks_faults")  # fmt: skip
    m.wait_workers(1, timeout=60)
    tq = TaskQueue(settings)
    before = [tq.enqueue_with("ledger.noop", (i,), strict=False) for i in range(10)]
    assert [tq.result(j, timeout=30)["value"] for j in before] == list(range(10))
    # the master, the worker and this client log in as the ACL user
    assert users_of_taskqueue(locked.primary()) == {AUTH.user}
    from_async: list[str] = []  # every job the asyncio client enqueued

    async def from_asyncio() -> int:
        atq = AsyncTaskQueue(settings)
        try:
            from_async.append(await atq.enqueue_with("ledger.noop", (7,), strict=False))
            return (await atq.result(from_async[-1], 30))["value"]
        finally:
            await atq.close()

    assert asyncio.run(from_asyncio()) == 7
    shown = tqctl(locked_url, "status") + tqctl(locked_url, "config", "show", "--json")
    assert '"password": "***"' in shown and '"sentinel_password": "***"' in shown
    shows_no_secret(shown + repr(settings) + repr(tq))

    # Replication is asynchronous: the records of the jobs done so far must be on the replica
    # before the primary dies, or the failover itself loses them (not what this test is about).
    replicated(locked.primary())
    ledger.fault("sentinel failover: primary SIGKILLed")  # every process may be hit
    locked.kill_primary()  # the Sentinels log in to the replica to promote it
    # Until every Sentinel agrees on the new primary, a call may meet an outage: retry it, as
    # a producer does (same idempotency key).
    after = [
        retried(lambda i=i: tq.enqueue_with("ledger.noop", (i,), key=f"after-{i}", strict=False))
        for i in range(10)
    ]
    assert [retried(lambda j=j: tq.result(j, timeout=60))["value"] for j in after] == list(
        range(10)
    )
    assert retried(lambda: asyncio.run(from_asyncio())) == 7
    wait_for(lambda: m.status() and m.status()["workers"][0]["state"] == "running", 60,
             "the master to report through the new primary")  # fmt: skip
    shows_no_secret(json.dumps(m.status()))  # the status record tqctl and the API read
    ids = [*before, *after, *from_async]
    wait_for(lambda: all(tq.status(i).state == "succeeded" for i in ids), 60, "every job done")
    assert m.stop(timeout=60) == 0
    shows_no_secret(m.log())
    report = check_ledger(tq.redis, ids, ledger, tq.keys)
    assert report.runs == len(ids) and not report.excused  # the failover ran no job twice
    tq.close()


def replicated(primary: RedisServer) -> None:
    """Wait until the replica has every write ``primary`` took so far."""
    with primary.client() as c:
        offset = c.info("replication")["master_repl_offset"]
        wait_for(lambda: c.info("replication")["slave0"]["offset"] >= offset, 30,
                 "the replica to catch up")  # fmt: skip


def test_wrong_credentials_say_which_settings_to_fix(locked: LocalSentinel, locked_url: str,
                                                     masters):  # fmt: skip
    wrong = "not-the-password-123"
    bad_sentinel_pw = settings_from_env(locked_url, TASKQUEUE_REDIS__SENTINEL_PASSWORD=wrong)
    with pytest.raises(RedisRefused, match="Sentinels refused .* Check redis.sentinel_pass") as err:
        TaskQueue(bad_sentinel_pw).queues()
    assert wrong not in str(err.value) and AUTH.sentinel_user_password not in str(err.value)
    bad_server_pw = TaskQueue(settings_from_env(locked_url, TASKQUEUE_REDIS__PASSWORD=wrong))
    with pytest.raises(RedisRefused, match="Redis refused the connection .*redis.password") as err:
        bad_server_pw.queues()
    assert wrong not in str(err.value)
    m = masters(locked_url, "-w", "1", env={**ENV, "TASKQUEUE_REDIS__SENTINEL_PASSWORD": wrong},
                settings=settings_from_env(locked_url))  # fmt: skip
    assert m.wait(timeout=60) == 2  # fatal at start: one clear line, no retry loop
    assert "redis.sentinel_password" in m.log() and wrong not in m.log()


def test_server_credentials_as_settings_on_one_server(redis_factory):
    """redis.username/redis.password work for a plain redis:// URL too."""
    server = redis_factory(args=["--requirepass", "admin-pw", "--user", "app", "on", ">app-pw",
                                 "~*", "&*", "+@all"], password="admin-pw")  # fmt: skip
    tq = TaskQueue(RedisSettings(server.url, username="app", password="app-pw"))
    assert tq.enqueue_with("m.noop", (), strict=False)
    assert users_of_taskqueue(server) == {"app"}
    tq.close()


@pytest.mark.parametrize(
    "url, env, says",
    [
        ("redis://h:6379/0", {"TASKQUEUE_REDIS__SENTINEL_PASSWORD": "x"},
         "environment variable TASKQUEUE_REDIS__SENTINEL_PASSWORD: redis.sentinel_username/"
         "redis.sentinel_password are set but redis.url is not a redis+sentinel://"),
        ("redis+cluster://h:7000", {"TASKQUEUE_REDIS__SENTINEL_USERNAME": "w"}, "the Sentinels' own"),
        ("redis+sentinel://app:pw@s1:26379/mymaster", {"TASKQUEUE_REDIS__PASSWORD": "x"},
         "give the servers' credentials in one place"),
        ("redis://:pw@h:6379/0", {"TASKQUEUE_REDIS__USERNAME": "app"}, "in one place"),
    ],
)  # fmt: skip
def test_credential_settings_are_checked_against_the_url(url: str, env: dict, says: str):
    with pytest.raises(ConfigError, match=says.replace("+", r"\+")):
        TaskQueueConfig.load(env={"REDIS_URL": url, **env})
    overrides = {k.removeprefix("TASKQUEUE_REDIS__").lower(): v for k, v in env.items()}
    with pytest.raises(BadRedisUrl, match=says.split(": ", 1)[-1].replace("+", r"\+")):
        RedisSettings(url, **overrides)


def test_passwords_are_never_shown_by_the_config():
    cfg = TaskQueueConfig.load(env={**ENV, "REDIS_URL": "redis+sentinel://s1:26379/mymaster"})
    assert cfg.as_dict()["redis"]["password"] == "***"
    assert cfg.as_dict()["redis"]["sentinel_password"] == "***"
    assert cfg.as_dict()["redis"]["sentinel_username"] == AUTH.sentinel_user
    shows_no_secret(repr(cfg) + repr(cfg.as_dict()) + repr(RedisSettings.from_config(cfg)))
    with pytest.raises(ConfigError) as err:
        TaskQueueConfig.load(env={**ENV, "REDIS_URL": "redis://h:6379/0"})
    shows_no_secret(str(err.value))
