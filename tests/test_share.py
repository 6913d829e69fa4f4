"""taskqueue.master.share: what the master does to its memory before it forks workers (issue 14,
step 5). Each check runs in a fresh interpreter: it reads and changes that process's allocator
state and freezes its collector."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.smoke

#: Prints, as JSON: which probes (one new object per size class, made right after the fill)
#: landed in a 16 KiB pool that held a live object before the fill, and the fill's size.
PROBE = """
import gc, json, sys
import taskqueue.cli.worker, taskqueue.master.arbiter  # what the master holds before it forks
from taskqueue.master import share

gc.disable()
pools = set()
for o in gc.get_objects():
    pools.add(id(o) // share.POOL_SIZE)
    pools.update(id(r) // share.POOL_SIZE for r in gc.get_referents(o))
lengths = [size - 33 for size in share.SIZE_CLASSES if size >= 48]
probes = [None] * len(lengths)
taken = share.fill_free_blocks()
for i in range(len(lengths)):
    probes[i] = bytes(lengths[i])
old = [len(p) + 33 for p in probes if id(p) // share.POOL_SIZE in pools]
print(json.dumps({"taken": taken, "in_old_pools": old}))
"""


def run(code: str, **env: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], env=os.environ | env, check=True,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    return json.loads(out.stdout.splitlines()[-1])


def test_after_the_fill_new_objects_land_in_pools_that_held_nothing() -> None:
    got = run(PROBE)
    assert got["taken"] > 0
    assert got["in_old_pools"] == [], "these size classes still had holes in the master's pools"


def test_the_fill_happens_once_and_its_size_is_bounded() -> None:
    got = run("""
import json
from taskqueue.master import share
share.prepare_to_share()
first = len(share.filled())
share.prepare_to_share()
share.prepare_to_share()
bound = sum((share.POOL_SIZE - share.POOL_HEADER) // size * share.MAX_POOLS_PER_CLASS
            for size in share.SIZE_CLASSES)
print(json.dumps({"first": first, "after": len(share.filled()), "bound": bound}))
""")
    assert 0 < got["first"] == got["after"] <= got["bound"]


@pytest.mark.parametrize("allocator", ["malloc", "pymalloc_debug"])
def test_without_plain_pymalloc_nothing_is_filled(allocator: str) -> None:
    got = run(
        "import json; from taskqueue.master import share;"
        "print(json.dumps({'taken': share.fill_free_blocks()}))",
        PYTHONMALLOC=allocator,
    )
    assert got == {"taken": 0}
