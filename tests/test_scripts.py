"""The Lua scripts themselves: headers match bodies, loading survives SCRIPT FLUSH."""

from __future__ import annotations

import re

import pytest

from taskqueue.scripts import LUA_DIR, parse_header, script_names, source

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
