"""Readying the master's memory to be shared with the workers it forks next.

A forked worker shares every page of the master until it writes to one; the page is then
copied and private to that worker. A page that both workers write is held three times: once by
each, and once more by the master, whose original is now shared with no one. So what a worker
writes into inherited memory costs up to three times its size in the tree's private memory
(USS). ``prepare_to_share()`` runs before each fork and removes the writes that are not the
worker's own doing (``bench/cow_pages.py`` lists what is left, ``bench/idle_memory.py``
measures the tree):

1. Compute what each worker would otherwise compute or look up again: every script's text and
   SHA (``scripts.compute_all``) and redis-py's version (``connection.pin_redis_version``).
2. Empty CPython's method cache. Each entry holds a reference to an attribute name; a worker
   that evicted the master's entries would write to the reference counts of names it never
   uses.
3. Before the first fork only: fill the free blocks of CPython's small-object allocator
   (``fill_free_blocks``). A worker's new objects would otherwise land in the holes the
   master's freed objects left, scattered over its pages, and copy each of those pages; with
   the holes filled, they land in pools the master never touched, whose pages are the worker's
   own from the start. Only once: filling again before a later fork would write into pages the
   workers already running share with the master, and make them theirs alone; and the master
   keeps what a fill takes for good, so filling once bounds it (~1 MiB, shared).
4. Move everything allocated so far out of the collector's reach (``gc.freeze``): a worker's
   garbage collections then never write to those objects.
"""

from __future__ import annotations

import gc
import os
import sys
import sysconfig
from collections.abc import Callable
from typing import Any

from ..connection import pin_redis_version
from ..scripts import compute_all

#: CPython's small-object allocator (pymalloc, 3.11+ on 64-bit): blocks of up to 512 bytes in
#: 32 size classes of 16 bytes, carved from 16 KiB pools; a pool's first block follows its
#: 48-byte header.
POOL_SIZE = 16 * 1024
POOL_HEADER = 48
SIZE_CLASSES = range(16, 513, 16)
#: Most blocks ``fill_free_blocks`` takes of one size class: 16 pools' worth (a master that
#: imported the whole stack has ~5 pools of holes in its busiest class). Bounds the work should
#: the allocator not be laid out as above.
MAX_POOLS_PER_CLASS = 16

#: What the fill holds, for the life of the process.
_filled: list[object] = []


def _maker(size: int) -> Callable[[], object]:
    """A function making a new untracked object that pymalloc serves from class ``size``."""
    if size == 16:
        return object  # 16 bytes
    if size == 32:
        return lambda: float(len(_filled)) + 0.5  # 24 bytes: class 32
    length = size - sys.getsizeof(b"")  # bytes: a 33-byte header, plus one per byte
    return lambda: bytes(length)


#: (size, maker, blocks per pool) for each class, made at import: objects the fill made for
#: itself and freed once done would leave holes behind it.
_PLAN = [(size, _maker(size), (POOL_SIZE - POOL_HEADER) // size) for size in SIZE_CLASSES]


def plain_pymalloc() -> bool:
    """Whether this interpreter allocates small objects with pymalloc as laid out above: a
    64-bit build with the GIL (free-threaded builds use mimalloc), no debug hooks."""
    debug = sys.flags.dev_mode or hasattr(sys, "gettotalrefcount")  # -X dev, a debug build
    threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    allocator = os.environ.get("PYTHONMALLOC", "pymalloc")
    return allocator == "pymalloc" and not debug and not threaded and sys.maxsize > 2**32


def fill_free_blocks() -> int:
    """Take every free block of every size class, then one whole fresh pool, and keep them.

    A fresh pool hands out its blocks in address order, from just past its header to its end;
    a pool with holes hands out whatever was freed last (a run of freed neighbours can look
    the same, but seldom a whole pool). So once one whole pool has come out in order, this size
    class's holes are used up, and its next blocks come from a pool no one has touched. Returns
    the number of blocks taken: none under another allocator or pymalloc's debug hooks (which
    pad each block, so the sizes above do not hold)."""
    if not plain_pymalloc():
        return 0
    steps = iter(_PLAN)
    _filled.append(steps)  # kept, like the blocks: see _PLAN
    for size, make, per_pool in steps:
        n, run, expect = per_pool * MAX_POOLS_PER_CLASS, 0, -1
        while n and run < per_pool:
            n -= 1
            obj = make()
            _filled.append(obj)
            at = id(obj)
            if at % POOL_SIZE == POOL_HEADER:
                run = 1
            elif at == expect and run:
                run += 1
            else:
                run = 0
            expect = at + size
    return len(_filled) - 1


def filled() -> list[Any]:
    """What the fill holds (for tests)."""
    return _filled


def prepare_to_share() -> None:
    """Steps 1-4 of the module's docstring; call right before forking."""
    compute_all()
    pin_redis_version()
    sys._clear_type_cache()
    if not _filled:
        fill_free_blocks()
    gc.freeze()
