"""``conf/redis-acl.conf``: its user may send exactly the commands taskqueue uses (derived here
from the Lua scripts and the Python code, so the file cannot go stale) on the namespace's keys
only, and Redis accepts the file as it ships."""

from __future__ import annotations

import ast
import functools
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis

from taskqueue import TaskQueue
from taskqueue.errors import RedisRefused
from taskqueue.scripts import LUA_DIR
from taskqueue.testing import RedisServer, wait_for
from taskqueue.testing.server import free_port

ROOT = Path(__file__).resolve().parent.parent
ACL_CONF = ROOT / "conf" / "redis-acl.conf"
PACKAGE = ROOT / "taskqueue"
#: Names the code gives its redis-py clients and pipelines (``self.redis``, ``client``, ``pipe``).
RECEIVERS = re.compile(r"(^|\.)(redis|client|pipe)$")
#: What redis-py itself sends on taskqueue's behalf: the health check and the database choice
#: on each connection, the name every pool gives its connections (connection.py), the scripts'
#: EVALSHA with SCRIPT LOAD after NOSCRIPT and SCRIPT EXISTS before a pipeline, and for Redis
#: Cluster the slot map, the command table (to find keys) and ASKING during a slot migration.
LIBRARY = {"PING", "SELECT", "CLIENT SETNAME", "EVALSHA", "SCRIPT LOAD", "SCRIPT EXISTS",
           "CLUSTER SLOTS", "COMMAND", "ASKING"}  # fmt: skip


#: Sent only as a best-effort look: `tqctl status` scans for masters of other namespaces (SCAN).
#: The confined user is meant to be refused it (it would see other namespaces' key names); tqctl
#: then shows nothing extra. (Its ZCOUNT of those namespaces is refused by the key pattern; the
#: user keeps ZCOUNT for its own keys: the metrics reader needs it, see the test below.)
BEST_EFFORT = {"SCAN"}


def lua_commands() -> set[str]:
    out = set()
    for path in [*LUA_DIR.glob("*.lua"), *LUA_DIR.glob("includes/*.lua")]:
        out |= {c.upper() for c in re.findall(r"redis\.p?call\('(\w+)'", path.read_text())}
    return out


@functools.cache
def redis_py_command(method: str) -> str | None:
    """The Redis command a redis-py client method sends (None: not a command, e.g. pipeline)."""
    fn = getattr(redis.Redis, method, None)
    if fn is None or not callable(fn):
        return None
    try:
        src = inspect.getsource(fn)
    except (OSError, TypeError):
        return None
    for pattern in (r'execute_command\(\s*"([A-Z]+(?: [A-Z]+)?)"',
                    r'(?:\[|\w\()\s*"([A-Z]+(?: [A-Z]+)?)"'):  # fmt: skip
        found = re.findall(pattern, src)
        if found:
            return found[0]
    return None


def python_commands() -> dict[str, set[str]]:
    """Command -> where the package's code sends it (tests' helpers in taskqueue/testing aside)."""
    out: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if "testing" in path.relative_to(PACKAGE).parts:
            continue
        text = path.read_text()
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            if node.func.attr in ("send_command", "execute_command") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    out.setdefault(arg.value.upper(), set()).add(f"{where}:{node.lineno}")
                continue
            if RECEIVERS.search(ast.unparse(node.func.value)):
                if node.func.attr == "pipeline" and not any(
                    k.arg == "transaction" and isinstance(k.value, ast.Constant)
                    and k.value.value is False for k in node.keywords
                ):  # fmt: skip
                    for command in ("MULTI", "EXEC"):  # a transaction (redis-py's default)
                        out.setdefault(command, set()).add(f"{where}:{node.lineno}")
                command = redis_py_command(node.func.attr)
                if command:
                    out.setdefault(command, set()).add(f"{where}:{node.lineno}")
    return out


def acl_line() -> list[str]:
    lines = [x for x in ACL_CONF.read_text().splitlines() if x.startswith("user taskqueue ")]
    assert len(lines) == 1, "conf/redis-acl.conf must have exactly one 'user taskqueue' line"
    return lines[0].split()


def acl_commands() -> set[str]:
    return {t[1:].replace("|", " ").upper() for t in acl_line() if t.startswith("+")}


def test_acl_allows_exactly_the_commands_taskqueue_uses():
    used = (lua_commands() | set(python_commands()) | LIBRARY) - BEST_EFFORT
    allowed = acl_commands()
    missing = sorted(used - allowed)
    extra = sorted(allowed - used)
    assert not missing, f"conf/redis-acl.conf lacks commands the code sends: {missing}"
    assert not extra, f"conf/redis-acl.conf allows commands nothing sends: {extra}"


def test_acl_user_starts_from_nothing_and_sees_one_namespace():
    tokens = acl_line()
    for reset in ("resetpass", "resetkeys", "resetchannels", "-@all", "off"):
        assert reset in tokens, f"the shipped user must say {reset!r}"
    assert [t for t in tokens if t.startswith("~")] == ["~tq:{default}:*"]
    assert not [t for t in tokens if t.startswith((">", "#", "nopass"))], "no password shipped"


def test_the_derivation_sees_what_the_code_sends():
    py = python_commands()
    assert {"BLPOP", "HGETALL", "ZREVRANGE"} <= set(py), sorted(py)
    assert "BLPOP" in py and any("inbox.py" in w for w in py["BLPOP"])
    assert {"HSET", "EVALSHA"} <= lua_commands() | LIBRARY


@pytest.fixture
def acl_server():
    server = RedisServer(config=ACL_CONF).start()
    with server.client() as admin:
        admin.execute_command("ACL", "SETUSER", "taskqueue", "on", ">s3cret")
    yield server
    server.close()


def test_redis_loads_the_file_and_confines_the_user(acl_server: RedisServer):
    user = redis.Redis(port=acl_server.port, username="taskqueue", password="s3cret")
    assert user.ping()
    user.hset("tq:{default}:job:1", "state", "queued")
    assert user.hget("tq:{default}:job:1", "state") == b"queued"
    refused = [
        lambda: user.get("tq:{other}:job:1"),  # another namespace
        lambda: user.get("other-app:session"),  # another application
        lambda: user.keys("*"),
        lambda: user.flushall(),
        lambda: user.config_get("*"),
        lambda: user.eval("return 1", 0),
        lambda: user.eval("return redis.call('GET', 'tq:{other}:x')", 0),
    ]
    for call in refused:
        with pytest.raises(redis.exceptions.NoPermissionError):
            call()
    with pytest.raises(redis.ResponseError, match="can't access at least one of the keys"):
        # A script may run, but Redis checks every key it touches against the user's patterns.
        user.evalsha(user.script_load("return redis.call('GET', 'tq:{other}:x')"), 0)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=acl_server.port, username="taskqueue", password="wrong").ping()


@pytest.mark.slow
def test_the_acl_user_runs_everything(acl_server: RedisServer, masters, tmp_path):
    """A master with a worker and the HTTP child, a client, tqctl: all as the confined user.
    Any command missing from the file would surface as NOPERM somewhere here."""
    url = f"redis://taskqueue:s3cret@127.0.0.1:{acl_server.port}/0"
    port = free_port()
    m = masters(url, "-w", "1", "--http", f"127.0.0.1:{port}")
    m.wait_workers(1, timeout=60)
    tq = TaskQueue(url)
    job = tq.enqueue_with("m.noop", (), strict=False)
    tq.result(job, timeout=30)  # raises unless it succeeded
    later = tq.enqueue_with("m.noop", (), delay=0.3, key="once", strict=False)
    assert tq.enqueue_with("m.noop", (), key="once", strict=False) == later
    tq.result(later, timeout=30)
    env = {**os.environ, "REDIS_URL": url}
    for args in (["status", "--json"], ["queues", "--json"], ["ping"], ["job", job],
                 ["queue", "pause", "default"], ["queue", "resume", "default"], ["dead"]):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "taskqueue.cli.tqctl", *args], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, f"tqctl {' '.join(args)}: {done.stderr}"
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(f"{base}/tasks/uptime"), 60, "the HTTP child")
    doc = httpx.get(f"{base}/tasks/openapi.json", timeout=30).json()
    gets = [p for p, ops in doc["paths"].items() if "get" in ops and "{" not in p]
    assert len(gets) > 10
    for path in gets:
        r = httpx.get(f"{base}{path}", timeout=30)
        assert r.status_code < 500, f"GET {path} as the ACL user: {r.status_code} {r.text[:200]}"
    assert "NOPERM" not in m.log()
    other = TaskQueue(url, namespace="other")
    with pytest.raises(RedisRefused, match="NOPERM|no permissions"):
        other.enqueue_with("m.noop", (), strict=False)
    assert m.stop(timeout=60) == 0


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False
