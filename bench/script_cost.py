#!/usr/bin/env python3
"""What one job costs inside Redis: the enqueue and fetch scripts against a plain LPUSH.

    python bench/script_cost.py [--calls 20000] [--steps]

On a private redis-server: the ``enqueue`` script given one job, ``enqueue_now`` (what
``TaskQueue.enqueue`` sends for one job queued now), the same effects written out by hand for
one job (no includes, no loops or tables: the floor of a specialised single-job script), an
empty script, and one LPUSH of a message the size of a pickled Huey job; then the fetch script leasing one job per call (as a worker woken for one
job does), and finding none. Each runs ``--calls`` times; prints Redis's own time per call from
``INFO commandstats`` (``usec_per_call``, the inner commands of a script included).

``--steps`` also prints what each step of the enqueue script adds inside Redis (each step alone
in a script, less the empty script), and one round trip on a bare connection (no pool, no
client code) for PING, Huey's LPUSH, an empty script given the enqueue's 22 arguments, the
enqueue script and enqueue_now: Redis CPU per call (``INFO cpu``: parsing, the script, the
socket writes) and wall time per call. That is the floor under a single enqueue whatever the
client does.

``--variants N`` times ways of writing the record that were measured and not taken, N
interleaved rounds, a fresh job key per call: ``enqueue_now`` as it is, with its zero counters
written as strings, and with the clock as a string too (Lua formats a number argument on each
call); and the record's HSET alone with its 15 fields against the 10 left when the fields that
default to 0 or repeat the key are dropped.
"""

from __future__ import annotations

import argparse
import statistics
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

#: Each step of BY_HAND alone, with the same KEYS and ARGV (a fresh job key per call, as a real
#: enqueue has). A step's cost is its time less the empty script's.
STEPS = {
    "TIME": "redis.call('TIME') return 1",
    "HSET of the 15-field record": """
redis.call('HSET', KEYS[3], 'id', ARGV[3], 'task', ARGV[4], 'queue', ARGV[5], 'payload', ARGV[6],
    'state', 'queued', 'attempts', 0, 'failures', 0, 'stalls', 0, 'max_retries', ARGV[7],
    'timeout_ms', ARGV[8], 'enqueued_ms', 1, 'due_ms', 1, 'dead_letter', ARGV[12],
    'ttl_ms', ARGV[13])
return 1""",
    "RPUSH on the ready list": "redis.call('RPUSH', KEYS[4], ARGV[3]) return 1",
    "wake token LPUSH (+ LTRIM)": """
if redis.call('LPUSH', KEYS[6], '1') > 128 then redis.call('LTRIM', KEYS[6], 0, 63) end
return 1""",
    "SADD of the queue name": "redis.call('SADD', KEYS[2], ARGV[5]) return 1",
    "stats: 2 HINCRBY (+ PEXPIRE)": """
local f = ARGV[5] .. '@' .. ARGV[4] .. ':enqueued'
redis.call('HINCRBY', KEYS[1], f, 1)
local mk = KEYS[1] .. ':1'
if redis.call('HINCRBY', mk, f, 1) == 1 then redis.call('PEXPIRE', mk, 7200000) end
return 1""",
}


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
    p.add_argument("--steps", action="store_true", help="each step's cost, and bare round trips")
    p.add_argument("--variants", type=int, default=0, metavar="N",
                   help="N interleaved rounds of record-writing variants not taken")  # fmt: skip
    args = p.parse_args()
    import tq_sync_app

    from taskqueue import TaskQueue
    from taskqueue.scripts import source
    from taskqueue.testing.server import RedisServer

    server = RedisServer().start()
    try:
        r = server.client()
        tq = TaskQueue(server.url)
        job = tq._job(tq_sync_app.incr, (1,), None)
        call = tq.broker._enqueue([job])  # the batch script, given one job
        argv = (len(call.keys), *call.keys, *call.args)
        now = tq.broker.enqueue([job])  # what a single enqueue sends: enqueue_now
        argv_now = (len(now.keys), *now.keys, *now.args)
        message = b"x" * 120
        rows = []
        for name, src, a in (("enqueue script", source("enqueue"), argv),
                             ("enqueue_now script", source("enqueue_now"), argv_now),
                             ("same effects by hand", BY_HAND, argv),
                             ("empty script", "return 1", argv)):  # fmt: skip
            sha = r.script_load(src)
            rows.append(
                (name, per_call(r, "evalsha", args.calls, lambda s=sha, a=a: r.evalsha(s, *a)))
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
        if args.steps:
            steps = step_costs(r, argv, args.calls)
            trips = round_trips(r, argv, argv_now, message, args.calls)
        if args.variants:
            variants = variant_costs(r, argv_now, args.calls, args.variants)
        tq.close()
    finally:
        server.close()
    print(f"{args.calls} calls each, Redis's time per call (INFO commandstats usec_per_call):")
    for name, us in rows:
        print(f"  {name:24s} {us:6.2f} µs")
    if args.steps:
        print("What each step of the enqueue script adds (its script less the empty one):")
        for name, us in steps:
            print(f"  {name:30s} {us:6.2f} µs")
        print("One round trip on a bare connection: Redis CPU (INFO cpu) and wall time per call:")
        for name, cpu, wall in trips:
            print(f"  {name:30s} Redis {cpu:6.1f} µs  wall {wall:6.1f} µs")
    if args.variants:
        print(f"Variants not taken, µs per call, median (min-max) of {args.variants} rounds:")
        for name, runs in variants.items():
            print(f"  {name:34s} {statistics.median(runs):6.2f} ({min(runs):.2f}-{max(runs):.2f})")
    return 0


def variant_costs(r, argv_now: tuple, calls: int, rounds: int) -> dict[str, list[float]]:  # noqa: ANN001
    """usec_per_call of each VARIANT over ``rounds`` interleaved rounds, a fresh job key per call."""
    from taskqueue.scripts import source

    base = source("enqueue_now")
    zeros = base.replace("'attempts', 0, 'failures', 0, 'stalls', 0",
                         "'attempts', '0', 'failures', '0', 'stalls', '0'")  # fmt: skip
    clock = zeros.replace("return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)",
                          "return tonumber(t[1] .. string.sub('00000' .. t[2], -6, -4))")  # fmt: skip
    assert base != zeros != clock, "the record or the clock changed: update the variants"
    fields = "'task', ARGV[2], 'queue', ARGV[3], 'payload', ARGV[4], 'state', 'queued', "
    tail = "'max_retries', ARGV[5], 'timeout_ms', ARGV[6], 'enqueued_ms', '1764403200123', "
    tail += "'dead_letter', ARGV[7], 'ttl_ms', ARGV[8]"
    full = (f"redis.call('HSET', KEYS[3], 'id', ARGV[1], {fields}'attempts', '0', 'failures', "
            f"'0', 'stalls', '0', {tail}, 'due_ms', '1764403200123') return 1")  # fmt: skip
    variants = {
        "enqueue_now": base,
        "zero counters as strings": zeros,
        "zero counters and clock as strings": clock,
        "HSET of the 15-field record": full,
        "HSET of 10 fields (no 0s, id, due)": f"redis.call('HSET', KEYS[3], {fields}{tail}) return 1",
    }
    out: dict[str, list[float]] = {name: [] for name in variants}
    nk = argv_now[0]
    for _ in range(rounds):
        for name, src in variants.items():
            sha = r.script_load(src)
            keys = iter(range(calls))
            out[name].append(per_call(r, "evalsha", calls, lambda s=sha, k=keys: r.evalsha(
                s, nk, *argv_now[1:3], f"{argv_now[3]}:{next(k)}", *argv_now[4:])))  # fmt: skip
    return out


def step_costs(r, argv: tuple, calls: int) -> list[tuple[str, float]]:  # noqa: ANN001
    """usec_per_call of each STEPS script, less the empty script's, a fresh job key per call."""
    job_keys = [f"{argv[3]}:{i}" for i in range(calls)]

    def cost(src: str) -> float:
        sha = r.script_load(src)
        keys = iter(job_keys)
        return per_call(r, "evalsha", calls,
                        lambda: r.evalsha(sha, *argv[:3], next(keys), *argv[4:]))  # fmt: skip

    empty = cost("return 1")
    return [(name, cost(src) - empty) for name, src in STEPS.items()]


def round_trips(r, argv: tuple, argv_now: tuple, message: bytes, calls: int) -> list:  # noqa: ANN001
    """(name, Redis CPU µs, wall µs) per call of one command sent and read on a bare connection."""
    import time

    from taskqueue.scripts import source

    empty, full = r.script_load("return 1"), r.script_load(source("enqueue"))
    one = r.script_load(source("enqueue_now"))
    conn = r.connection_pool.get_connection()

    def cpu() -> float:
        info = r.info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])

    out = []
    for name, cmd in (("PING", ("PING",)), ("LPUSH of 120 bytes (Huey)", ("LPUSH", "q", message)),
                      ("empty script, enqueue's args", ("EVALSHA", empty, *argv)),
                      ("enqueue script", ("EVALSHA", full, *argv)),
                      ("enqueue_now script", ("EVALSHA", one, *argv_now))):  # fmt: skip
        c0, t0 = cpu(), time.perf_counter()
        for _ in range(calls):
            conn.send_command(*cmd)
            conn.read_response()
        wall, used = time.perf_counter() - t0, cpu() - c0
        out.append((name, used / calls * 1e6, wall / calls * 1e6))
    r.connection_pool.release(conn)
    r.flushall()
    return out


if __name__ == "__main__":
    sys.exit(main())
