"""``conf/redis-acl.conf``: its user may send exactly the commands taskqueue uses (derived here
from the Lua scripts and the Python code, so the file cannot go stale) on the namespace's keys
only, and Redis accepts the file as it ships."""

from __future__ import annotations

import ast
import functools
import inspect
import re
from pathlib import Path

import pytest
import redis

from taskqueue.scripts import LUA_DIR
from taskqueue.testing import RedisServer

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


#: Sent only as a best-effort look: `tqctl status` scans for masters of other namespaces (SCAN,
#: ZCOUNT). The confined user is meant to be refused them (it would see other namespaces' key
#: names); tqctl then shows nothing extra.
BEST_EFFORT = {"SCAN", "ZCOUNT"}


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
