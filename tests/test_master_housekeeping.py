"""What a SIGKILLed master leaves behind in Redis does not pile up: the next master to start
drops the stale masters-index ids and registered-tasks entries (a dead master never ran its
``unregister``), and keeps the live ones."""

from __future__ import annotations

import json
import time

from taskqueue import TaskQueue
from taskqueue.testing import wait_for


def test_a_starting_master_drops_what_dead_masters_left(redis_url, masters) -> None:
    tq = TaskQueue(redis_url)
    r, keys = tq.redis, tq.keys
    gone = json.dumps({"queues": ["default"], "tasks": ["x"], "options": {},
                       "expires_ms": int(time.time() * 1000) - 1})  # fmt: skip
    live = json.dumps({"queues": ["default"], "tasks": ["y"], "options": {},
                       "expires_ms": int(time.time() * 1000) + 600_000})  # fmt: skip
    r.hset(keys.registered, mapping={"dead-host:1": gone, "other-host:2": live})
    secs, _ = r.time()
    r.zadd(keys.masters, {"dead-host:1": (secs - 3600) * 1000, "other-host:2": secs * 1000})
    m = masters(redis_url, "-w", "1")
    m.wait_workers(1)
    wait_for(lambda: not r.hexists(keys.registered, "dead-host:1"), 30,
             "the dead master's registered-tasks entry to go")  # fmt: skip
    assert r.hexists(keys.registered, "other-host:2"), "a live entry stays"
    assert r.zscore(keys.masters, "dead-host:1") is None
    assert r.zscore(keys.masters, "other-host:2") is not None
    assert "removed 1 stale registered-task entry" in m.log()
    assert m.stop() == 0
    tq.close()
