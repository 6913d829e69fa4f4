"""The Lua scripts themselves: headers match bodies, loading survives SCRIPT FLUSH."""

from __future__ import annotations

import re

import pytest
import redis

from taskqueue import TaskQueue
from taskqueue.scripts import LUA_DIR, Registered, parse_header, script_names, sha, source

pytestmark = pytest.mark.smoke


def test_every_operation_has_a_script() -> None:
    expected = {"enqueue", "fetch", "ack", "fail", "extend", "release", "recover", "cancel",
                "pause", "resume", "purge", "dead_retry", "dead_delete", "watch"}  # fmt: skip
    assert expected <= set(script_names())


@pytest.mark.parametrize("name", script_names())
def test_header_lists_exactly_the_keys_and_argv_the_body_uses(name: str) -> None:
    text = (LUA_DIR / f"{name}.lua").read_text()
    header = parse_header(text)
    full = source(name)  # includes inlined: they may read ARGV too
    body = full[full.index("]]") + 2 :]
    for kind, fixed, variadic in (
        ("KEYS", header.keys, header.keys_variadic_from),
        ("ARGV", header.argv, header.argv_variadic_from),
    ):
        used = {int(n) for n in re.findall(rf"{kind}\[(\d+)\]", body)}
        computed = re.search(rf"{kind}\[(?!\d+\])", body) is not None
        assert used == set(fixed), f"{name}: {kind} used {sorted(used)}, declared {sorted(fixed)}"
        if computed:
            assert variadic is not None, (
                f"{name}: computes {kind} indices but declares no {kind}[n..]"
            )
            assert variadic == max(fixed, default=0) + 1, (
                f"{name}: {kind}[n..] must follow the fixed slots"
            )
        else:
            assert variadic is None, (
                f"{name}: declares {kind}[n..] but never indexes beyond fixed slots"
            )


@pytest.mark.parametrize("name", script_names())
def test_header_states_the_return_value(name: str) -> None:
    text = (LUA_DIR / f"{name}.lua").read_text()
    assert text.startswith("--[[ " + name + ":"), "header must open with '--[[ name: summary'"
    assert "Returns:" in text[: text.index("]]")]


def test_includes_are_inlined_once(redis_server) -> None:
    src = source("release")
    assert "--@include" not in src
    assert src.count("local function finish(") == 1
    assert src.count("local function now_ms(") == 1


def test_scripts_reload_after_script_flush(tq) -> None:
    tq.enqueue_with("anything", (1,), strict=False)
    tq.redis.script_flush()
    job_id = tq.enqueue_with("anything", (2,), strict=False)
    assert tq.status(job_id).state == "queued"
    assert tq.queue_lengths()["default"]["queued"] == 2


def test_the_server_under_test_is_the_one_asked_for(redis_server) -> None:
    """CI runs the smoke subset with TASKQUEUE_REDIS_SERVER=embedded: prove it is Redis 6.2."""
    import os

    version = redis_server.version()
    assert version >= (6, 2), f"scripts need Redis >= 6.2, got {version}"
    if os.environ.get("TASKQUEUE_REDIS_SERVER") == "embedded":
        assert version[:2] == (6, 2), f"embedded redis-server should be 6.2, got {version}"


#: Commands that change data: once a script has sent one, an error can no longer be undone.
WRITES = ("HSET", "HDEL", "HINCRBY", "ZADD", "ZREM", "ZPOPMIN", "LPUSH", "RPUSH", "LPOP", "SADD",
          "SREM", "SPOP", "DEL", "SET", "PEXPIRE", "EXPIRE", "PERSIST", "INCR", "INCRBY")  # fmt: skip
#: What ``tonumber`` may convert without a guard: caller arguments (checked by the client),
#: Redis' own numbers (TIME, scores), and fields ``corrupt_field`` validated first.
SAFE_TONUMBER = re.compile(r"ARGV\[|t\[\d\]|first\[|v$|f\[i\]")


#: Include functions that write.
WRITING_INCLUDES = ("finish", "to_dead", "stall", "unhold", "wake", "count", "new_job",
                    "flush_tally", "observe", "call_many", "drop_tombs")  # fmt: skip


def _first_write(text: str) -> int:
    calls = [rf"redis\.call\('{w}'" for w in WRITES] + [rf"\b{f}\(" for f in WRITING_INCLUDES]
    found = [m.start() for c in calls for m in re.finditer(c, text)]
    return min(found, default=len(text))


@pytest.mark.parametrize("name", script_names())
def test_no_script_can_fail_after_its_first_write(name: str) -> None:
    """The ordering rule. Redis does not roll back a script that raises, so every check that
    can fail comes before the first write: after it, record fields are converted only with
    ``num()`` (a default instead of an error) or once ``corrupt_field`` validated them; JSON
    is decoded only under ``pcall``; counters in job records are never HINCRBY'd (an error on
    a corrupt field); and no ``error()`` follows a write. Includes follow the rule throughout."""
    own = (LUA_DIR / f"{name}.lua").read_text()
    own = own[own.index("]]") + 2 :]
    includes = re.findall(r"^--@include (\w+)", own, re.M)
    texts = [(name, own, _first_write(own))]
    for inc in includes:
        text = (LUA_DIR / "includes" / f"{inc}.lua").read_text()
        texts.append((f"{name}/{inc}", text, 0))
    for where, text, first_write in texts:
        validated_at = text.find("corrupt_field(f)\n")
        for m in re.finditer(r"tonumber\(([^)]*)\)", text):
            arg = m.group(1)
            if m.start() < first_write or SAFE_TONUMBER.search(arg):
                continue
            ok = 0 <= validated_at < m.start() and re.fullmatch(r"f\[[3-6]\]", arg)
            assert ok, f"{where}: tonumber({arg}) of a record field after a write: use num()"
        for m in re.finditer(r"cjson\.decode", text):
            assert m.start() < first_write or text[m.start() - 6 : m.start()] == "pcall(", (
                f"{where}: cjson.decode outside pcall after a write"
            )
        assert not re.search(r"'HINCRBY', (job_key|KEYS\[1\])", text), f"{where}: HINCRBY"
        for m in re.finditer(r"\berror\(|redis\.error_reply", text):
            assert m.start() < first_write, f"{where}: raises an error after its first write"


def test_scripts_are_registered_on_a_client_only_when_a_pipeline_uses_them(redis_url) -> None:
    tq = TaskQueue(redis_url)
    scripts = tq.run.scripts
    assert isinstance(scripts, Registered) and isinstance(scripts.client, redis.Redis)
    tq.enqueue_with("t.single", strict=False)
    assert not scripts, "a single call sends EVALSHA: no Script object made"
    a, b = tq.broker.pause("q1"), tq.broker.resume("q2")
    tq.run.pipeline([a, b])
    assert sorted(scripts) == sorted({a.script, b.script})
    assert all(s.sha == sha(name) for name, s in scripts.items())
    with pytest.raises(KeyError):
        scripts["no_such_script"]
