"""Huge queues (issue 18): millions of waiting jobs and a million dead ones, and what each script
costs against them, read from Redis's own SLOWLOG.

    .venv/bin/python bench/huge_queues.py --waiting 10000000 --dead 1000000

Starts a private redis-server (no persistence, slowlog threshold 1 ms), fills it through the
client (enqueue_many), makes the dead ones through fetch + fail(retry=False), then runs the
operations a production queue runs against that state: single and bulk enqueue, fetch and ack,
cancel, dead retry and delete, purge (batched), recover. Prints a JSON report (bytes per job,
the fill rates, and per script: calls slower than 1 ms, the slowest call, calls over 5 ms) and
writes it to bench/results/huge-<time>.json. Nothing here is asserted: the figures are the point.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from report import save_result  # noqa: E402

from taskqueue import TaskQueue, task  # noqa: E402
from taskqueue.registry import Registry  # noqa: E402
from taskqueue.scripts import script_names, source  # noqa: E402
from taskqueue.serialization import encode_result  # noqa: E402
from taskqueue.testing.server import RedisServer  # noqa: E402


def sha_names() -> dict[str, str]:
    import hashlib

    return {hashlib.sha1(source(n).encode()).hexdigest(): n for n in script_names()}


def slowlog(r, names: dict[str, str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = defaultdict(lambda: {"calls_over_1ms": 0, "max_ms": 0.0,
                                                            "calls_over_5ms": 0})  # fmt: skip
    for e in r.slowlog_get(100_000):
        cmd = e["command"].split() if isinstance(e["command"], str) else e["command"].split()
        head = cmd[0].decode() if isinstance(cmd[0], bytes) else cmd[0]
        if head.upper() == "EVALSHA":
            sha = cmd[1].decode() if isinstance(cmd[1], bytes) else cmd[1]
            name = names.get(sha, sha[:8])
        else:
            name = head.upper()
        ms = e["duration"] / 1000
        row = out[name]
        row["calls_over_1ms"] += 1
        row["max_ms"] = round(max(row["max_ms"], ms), 3)
        row["calls_over_5ms"] += ms > 5
    r.slowlog_reset()
    return dict(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--waiting", type=int, default=10_000_000)
    ap.add_argument("--dead", type=int, default=1_000_000)
    args = ap.parse_args()
    reg = Registry()
    noop = task(name="bench.noop", registry=reg)(lambda i: i)
    doomed = task(name="bench.doomed", registry=reg, queue="doomed", max_retries=0)(lambda i: i)
    server = RedisServer(args=["--slowlog-log-slower-than", "1000", "--slowlog-max-len", "100000"])
    server.start()
    report: dict[str, object] = {"waiting": args.waiting, "dead": args.dead}
    try:
        tq = TaskQueue(server.url, registry=reg, broker_options={"dead_max": args.dead * 2})
        r, names = tq.redis, sha_names()
        base_mem = r.info("memory")["used_memory"]
        t0 = time.monotonic()
        chunk = 100_000
        for at in range(0, args.waiting, chunk):
            n = min(chunk, args.waiting - at)
            tq.enqueue_many([(noop, (i,)) for i in range(at, at + n)])
            if (at + n) % 1_000_000 == 0:
                print(f"enqueued {at + n:,}", file=sys.stderr, flush=True)
        fill_s = time.monotonic() - t0
        mem = r.info("memory")["used_memory"]
        report["enqueue_many_jobs_per_s"] = round(args.waiting / fill_s)
        report["bytes_per_waiting_job"] = round((mem - base_mem) / max(1, args.waiting))
        report["fill_slowlog"] = slowlog(r, names)
        # The dead letter: its own queue, fetched and failed without retry, 100 calls a trip.
        t0 = time.monotonic()
        made = 0
        while made < args.dead:
            n = min(10_000, args.dead - made)
            tq.enqueue_many([(doomed, (i,)) for i in range(made, made + n)])
            got: list = []
            while len(got) < n:
                got += tq.run(tq.broker.fetch(["doomed"], 100, f"t{made}", "bench")).jobs
            calls = [tq.broker.fail(j, "Boom: bench", "", 0, retry=False) for j in got]
            for i in range(0, len(calls), 100):
                tq.run.pipeline(calls[i : i + 100])
            made += n
            if made % 100_000 == 0:
                print(f"dead {made:,}", file=sys.stderr, flush=True)
        report["dead_fill_s"] = round(time.monotonic() - t0, 1)
        report["bytes_per_job_all"] = round(
            (r.info("memory")["used_memory"] - base_mem) / max(1, args.waiting + args.dead)
        )
        report["dead_slowlog"] = slowlog(r, names)
        # Operations against the full state.
        ops: dict[str, float] = {}
        t0 = time.monotonic()
        ids = [tq.enqueue(noop, i) for i in range(1000)]
        ops["single_enqueue_x1000_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        for _ in range(100):
            res = tq.run(tq.broker.fetch(["default"], 10, "tok", "bench"))
            tq.run(tq.broker.ack([(j, encode_result(None)) for j in res.jobs]))
        ops["fetch10_ack_x100_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        for job_id in ids[:200]:
            tq.cancel(job_id)
        ops["cancel_x200_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        tq.run(tq.broker.recover(["default", "doomed"]))
        ops["recover_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        ops["dead_retry_all_n"] = tq.retry_dead()
        ops["dead_retry_all_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        ops["purge_n"] = tq.purge("default") + tq.purge("doomed")
        ops["purge_s"] = time.monotonic() - t0
        report["operations"] = {k: round(v, 3) for k, v in ops.items()}
        report["operations_slowlog"] = slowlog(r, names)
        # Huge payloads: 1 MB and 10 MB arguments (limit raised for the run), enqueued, fetched
        # and acked; and one over the limit, refused at enqueue before it reaches Redis.
        big = TaskQueue(server.url, registry=reg, max_payload=16 * 2**20)
        payloads: dict[str, object] = {}
        for size in (2**20, 10 * 2**20):
            t0 = time.monotonic()
            big.enqueue(noop, "x" * size)
            res = big.run(big.broker.fetch(["default"], 1, "tok", "bench"))
            big.run(big.broker.ack([(j, encode_result(None)) for j in res.jobs]))
            payloads[f"{size // 2**20}MiB_enqueue_fetch_ack_s"] = round(time.monotonic() - t0, 3)
        try:
            tq.enqueue(noop, "x" * (tq.max_payload + 1))
            payloads["over_limit"] = "accepted (unexpected)"
        except Exception as exc:  # noqa: BLE001 - the refusal is what we report
            payloads["over_limit"] = f"{type(exc).__name__}: {str(exc)[:120]}"
        report["payloads"] = payloads
        report["payloads_slowlog"] = slowlog(r, names)
    finally:
        server.close()
    save_result("huge", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
