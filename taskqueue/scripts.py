"""Load the Lua scripts of ``taskqueue/lua`` into redis-py ``Script`` objects.

Each ``*.lua`` file is one atomic operation. ``--@include name`` lines are replaced by
``includes/name.lua`` (each include inlined once, in the order first asked for). The runners
send EVALSHA with ``sha(name)`` and, on NOSCRIPT (Redis restarted, SCRIPT FLUSH), load
``source(name)`` and retry; pipelines use redis-py ``Script`` objects, which do the same. So a
restarted server needs nothing from us.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

LUA_DIR = Path(__file__).with_name("lua")
_INCLUDE = re.compile(r"^--@include (\w+)\s*$", re.M)
#: Runs first in every script: Redis 6.2 needs effect replication for TIME followed by writes
#: (the default from Redis 5, a no-op on 7).
PRELUDE = "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"


@dataclass(frozen=True)
class Header:
    """What a script's header declares: fixed KEYS and ARGV slots, and whether more follow."""

    keys: frozenset[int]
    argv: frozenset[int]
    keys_variadic_from: int | None
    argv_variadic_from: int | None


@cache
def script_names() -> tuple[str, ...]:
    """Every script's name, sorted. Read once per process: a pre-fork master's workers inherit
    the list instead of each listing the directory again."""
    return tuple(sorted(p.stem for p in LUA_DIR.glob("*.lua")))


def _expand(source: str, seen: set[str]) -> str:
    def include(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in seen:
            return ""
        path = LUA_DIR / "includes" / f"{name}.lua"
        if not path.exists():
            raise FileNotFoundError(f"--@include {name}: no file {path}")
        seen.add(name)
        return _expand(path.read_text(), seen)

    return _INCLUDE.sub(include, source)


@cache
def source(name: str) -> str:
    """The full text sent to Redis for script ``name``, includes inlined."""
    return PRELUDE + _expand((LUA_DIR / f"{name}.lua").read_text(), set())


@cache
def sha(name: str) -> str:
    """The SHA1 that EVALSHA names script ``name`` by."""
    return hashlib.sha1(source(name).encode()).hexdigest()


def parse_header(text: str) -> Header:
    """Parse the ``--[[ ... ]]`` header of a script file."""
    end = text.index("]]")
    head = text[:end]
    fixed = {"KEYS": set(), "ARGV": set()}
    variadic: dict[str, int | None] = {"KEYS": None, "ARGV": None}
    for kind, index, dots in re.findall(r"^(KEYS|ARGV)\[(\d+)(\.\.)?\]", head, re.M):
        if dots:
            variadic[kind] = int(index)
        else:
            fixed[kind].add(int(index))
    return Header(
        frozenset(fixed["KEYS"]), frozenset(fixed["ARGV"]), variadic["KEYS"], variadic["ARGV"]
    )


def compute_all() -> None:
    """Build every script's text and SHA now (both are cached for the process). The pre-fork
    master does so once, so that its workers share the results instead of each building
    them."""
    for name in script_names():
        sha(name)


class Registered(dict[str, Any]):
    """Script name -> redis-py ``Script`` on one client (sync or asyncio), each registered on
    first use. Only pipelines call ``Script`` objects (single calls send EVALSHA with
    ``sha(name)``), and redis-py encodes and hashes a script's text again for each one it makes:
    a runner that never pipelines a script never pays for it."""

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client

    def __missing__(self, name: str) -> Any:
        if name not in script_names():
            raise KeyError(name)
        script = self[name] = self.client.register_script(source(name))
        return script
