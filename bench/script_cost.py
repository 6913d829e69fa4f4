#!/usr/bin/env python3
"""What one job costs inside Redis: the enqueue and fetch scripts against a plain LPUSH.

    python bench/script_cost.py [--calls 20000]

On a private redis-server: the ``enqueue`` script for one job (as ``TaskQueue.enqueue`` sends
it), the same effects written out by hand for one job (no includes, no loops or tables: the
floor of a specialised single-job script), an empty script, and one LPUSH of a message the size
of a pickled Huey job; then the fetch script leasing one job per call (as a worker woken for one
job does), and finding none. Each runs ``--calls`` times; prints Redis's own time per call from
``INFO commandstats`` (``usec_per_call``, the inner commands of a script included).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH / "apps")]

#: The enqueue script's effects for one job queued now, no key, no expiry (same KEYS and ARGV).
BY_HAND = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id, task, queue = ARGV[3], ARGV[4], ARGV[5]
redis.call('HSET', KEYS[3], 'id', id, 'task', task, 'queue', queue, 'payload', ARGV[6],
    'state', 'queued', 'attempts', 0, 'failures', 0, 'stalls', 0, 'max_retries', ARGV[7],
    'timeout_ms', ARGV[8], 'enqueued_ms', now, 'due_ms', now, 'dead_letter', ARGV[12],
    'ttl_ms', ARGV[13])
redis.call('RPUSH', KEYS[4], id)
if redis.call('LPUSH', KEYS[6], '1') > 128 then redis.call('LTRIM', KEYS[6], 0, 63) end
redis.call('SADD', KEYS[2], queue)
local f = queue .. '@' .. task .. ':enqueued'
redis.call('HINCRBY', KEYS[1], f, 1)
local mk = KEYS[1] .. ':' .. math.floor(now / 60000)
if redis.call('HINCRBY', mk, f, 1) == 1 then redis.call('PEXPIRE', mk, 7200000) end
return {id, 0}
"""


def per_call(r, command: str, calls: int, send) -> float:  # noqa: ANN001
    r.config_resetstat()
    for _ in range(calls):
        send()
    stats = r.info("commandstats")[f"cmdstat_{command}"]
    r.flushall()
    return float(stats["usec_per_call"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=20000)
    args = p.parse_args()
    import tq_sync_app

    from taskqueue import TaskQueue
    from taskqueue.scripts import source
    from taskqueue.testing.server import RedisServer

    server = RedisServer().start()
    try:
        r = server.client()
        tq = TaskQueue(server.url)
        call = tq.broker.enqueue([tq._job(tq_sync_app.incr, (1,), None)])
        argv = (len(call.keys), *call.keys, *call.args)
        message = b"x" * 120
        rows = []
        for name, src in (("enqueue script", source("enqueue")), ("same effects by hand", BY_HAND),
                          ("empty script", "return 1")):  # fmt: skip
            sha = r.script_load(src)
            rows.append(
                (name, per_call(r, "evalsha", args.calls, lambda s=sha: r.evalsha(s, *argv)))
            )
        rows.append(("LPUSH (Huey's enqueue)", per_call(r, "lpush", args.calls,
                                                        lambda: r.lpush("q", message))))  # fmt: skip
        tq.enqueue_many([(tq_sync_app.incr, (i,), None) for i in range(args.calls)])
        r.config_resetstat()
        for i in range(args.calls):
            tq.run(tq.broker.fetch(["default"], 1, f"w:{i}", "w", halt=True))
        rows.append(
            (
                "fetch leasing 1 job",
                float(r.info("commandstats")["cmdstat_evalsha"]["usec_per_call"]),
            )
        )
        rows.append(("fetch finding none", per_call(r, "evalsha", args.calls, lambda: tq.run(
            tq.broker.fetch(["default"], 10, "w:0", "w", halt=True)))))  # fmt: skip
        tq.close()
    finally:
        server.close()
    print(f"{args.calls} calls each, Redis's time per call (INFO commandstats usec_per_call):")
    for name, us in rows:
        print(f"  {name:24s} {us:6.2f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
