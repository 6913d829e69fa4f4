"""Huge queues (issue 18): millions of waiting jobs and a million dead ones, and what each script
costs against them, read from Redis's own SLOWLOG.

    .venv/bin/python bench/huge_queues.py --waiting 10000000 --dead 1000000

Starts a private redis-server (no persistence), fills it through the client (enqueue_many), makes
the dead ones through fetch + fail(retry=False), then runs the operations a production queue runs
against that state, one phase at a time: single enqueues; cancels of waiting jobs at the tail and
at the head of the list (O(1): tombstones); fetch + ack through those tombstones; the queue
lengths every reader reports; recover; dead-letter trimming by count and by age (fail calls that
trim); dead retry; purge (batched). The fill phases log calls over 1 ms; the operation phases log
every call (threshold 0), so each script's median is Redis's own figure too. Prints a JSON report
(bytes per job, the fill rates, per phase and script: calls, median, slowest, calls over 5 ms;
the load average at each phase) and writes it to bench/results/huge-<time>.json. Nothing here is
asserted: the figures are the point.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from report import save_result  # noqa: E402

from taskqueue import TaskQueue, task  # noqa: E402
from taskqueue.broker import Broker  # noqa: E402
from taskqueue.registry import Registry  # noqa: E402
from taskqueue.scripts import script_names, source  # noqa: E402
from taskqueue.serialization import encode_result  # noqa: E402
from taskqueue.testing.server import RedisServer  # noqa: E402


def sha_names() -> dict[str, str]:
    import hashlib

    return {hashlib.sha1(source(n).encode()).hexdigest(): n for n in script_names()}


def slowlog(r, names: dict[str, str], spikes: list | None = None) -> dict[str, dict[str, float]]:
    """Per script (EVALSHA by name): calls logged, median and slowest (ms), calls over 5 ms; the
    commands the scripts run inside are summed up as one row, ``inner commands`` (their slowest
    is part of a script's time). Calls over ``SPIKE_MS`` are also appended to ``spikes`` as
    (name, ms, server time in s)."""
    times: dict[str, list[float]] = defaultdict(list)
    for e in r.slowlog_get(1_000_000):
        cmd = e["command"].split()
        head = cmd[0].decode() if isinstance(cmd[0], bytes) else cmd[0]
        if head.upper() == "EVALSHA":
            sha = cmd[1].decode() if isinstance(cmd[1], bytes) else cmd[1]
            name = names.get(sha, sha[:8])
        elif head.upper() in ("SLOWLOG", "CONFIG", "INFO"):
            continue
        else:
            name = "inner commands"
        times[name].append(e["duration"] / 1000)
        if spikes is not None and e["duration"] / 1000 > SPIKE_MS:
            spikes.append((name, e["duration"] / 1000, e["start_time"]))
    r.slowlog_reset()
    return {name: {"calls": len(ms), "median_ms": round(statistics.median(ms), 3),
                   "max_ms": round(max(ms), 3), "calls_over_5ms": sum(m > 5 for m in ms)}
            for name, ms in sorted(times.items())}  # fmt: skip


#: Calls slower than this are listed one by one, with how many keys Redis held at that second:
#: a main-dictionary resize (the keyspace or the expires dict doubling) shows up at powers of 2.
SPIKE_MS = 20


def redis_counters(r) -> tuple[float, int]:
    """Redis's CPU seconds so far (user + sys: not stretched by waiting for a core, unlike the
    SLOWLOG's wall times) and the EVALSHA calls so far."""
    cpu = r.info("cpu")
    calls = r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    return cpu["used_cpu_user"] + cpu["used_cpu_sys"], calls


def pretouch(gib: float) -> None:
    """Write one byte per page of ``gib`` GiB of anonymous memory, report the time per MiB
    (first-touch cost of the machine's memory), and free it."""
    size = int(gib * 2**30)
    buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    worst, t0 = 0.0, time.monotonic()
    for off in range(0, size, 2**20):
        t = time.monotonic()
        for page in range(off, min(size, off + 2**20), 4096):
            buf[page] = 1
        worst = max(worst, time.monotonic() - t)
    took = time.monotonic() - t0
    buf.close()
    print(
        f"pretouched {gib} GiB: {took * 1000 / (size / 2**20):.2f} ms per MiB, "
        f"slowest MiB {worst * 1000:.1f} ms",
        file=sys.stderr,
        flush=True,
    )


def latency_events(r) -> dict[str, dict[str, int]]:
    """Redis's LATENCY monitor since the last call (events over its threshold: ``command``,
    ``fast-command``, ``expire-cycle``, ...): how many, and the worst in ms; then reset."""
    out = {}
    for name, *_ in r.execute_command("LATENCY", "LATEST"):
        name = name.decode() if isinstance(name, bytes) else name
        history = r.execute_command("LATENCY", "HISTORY", name)
        out[name] = {"events": len(history), "max_ms": max(int(ms) for _, ms in history)}
    r.execute_command("LATENCY", "RESET")
    return out


class Phases:
    """Times one phase at a time, with its SLOWLOG, Redis's CPU per script call, and the load
    average around it. A phase may note its progress (server time, jobs so far) in
    ``progress``, to place its spikes."""

    def __init__(self, r, names: dict[str, str]) -> None:
        self.r, self.names, self.out = r, names, {}
        self.progress: list[tuple[float, int]] = []
        r.config_set("slowlog-max-len", 1_000_000)

    def now(self) -> float:
        secs, micros = self.r.time()
        return secs + micros / 1e6

    def run(self, name: str, fn, every_call: bool = False):
        self.r.config_set("slowlog-log-slower-than", 0 if every_call else 1000)
        self.r.slowlog_reset()
        self.progress = []
        load = os.getloadavg()[0]
        cpu0, calls0 = redis_counters(self.r)
        t0 = time.monotonic()
        result = fn()
        elapsed = time.monotonic() - t0
        cpu1, calls1 = redis_counters(self.r)
        spikes: list = []
        row = {"s": round(elapsed, 3), "load1": [round(load, 1), round(os.getloadavg()[0], 1)],
               "script_calls": calls1 - calls0,
               "redis_cpu_ms_per_script_call": round((cpu1 - cpu0) * 1000 / max(1, calls1 - calls0), 3),
               "slowlog": slowlog(self.r, self.names, spikes)}  # fmt: skip
        events = latency_events(self.r)
        if events:
            row["latency_events"] = events
        if spikes:
            row["spikes"] = [
                [n, round(ms, 1), self.done_at(t)]
                for n, ms, t in sorted(spikes, key=lambda x: x[2])
            ]
        if result is not None:
            row["result"] = result
        self.out[name] = row
        print(f"{name}: {row['s']} s {json.dumps(row.get('result'))}", file=sys.stderr, flush=True)
        return result

    def done_at(self, t: float) -> int | None:
        """Jobs the phase had done by server time ``t`` (s), from its progress notes."""
        before = [n for at, n in self.progress if at <= t + 1]
        return before[-1] if before else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--waiting", type=int, default=10_000_000)
    ap.add_argument("--dead", type=int, default=1_000_000)
    ap.add_argument(
        "--head-cancels",
        type=int,
        default=10_000,
        help="waiting jobs cancelled at the head of the list, fetched through after",
    )
    ap.add_argument(
        "--redis-nice",
        type=int,
        default=0,
        help="nice value for the private redis-server (negative needs root): a run at -10 shows "
        "what the SLOWLOG reads when other work on the machine does not take Redis's core",
    )
    ap.add_argument("--latency-ms", type=int, default=20,
                    help="Redis's latency-monitor-threshold: events at or over it are counted per "
                    "phase (LATENCY HISTORY keeps the last 160 of each kind)")  # fmt: skip
    ap.add_argument("--pretouch-gib", type=float, default=0,
                    help="touch this much fresh memory before starting, then free it: on a VM "
                    "whose memory the host backs on first touch, that takes the host's page "
                    "faults out of Redis's figures")  # fmt: skip
    args = ap.parse_args()
    if args.pretouch_gib:
        pretouch(args.pretouch_gib)
    reg = Registry()
    noop = task(name="bench.noop", registry=reg)(lambda i: i)
    doomed = task(name="bench.doomed", registry=reg, queue="doomed", max_retries=0)(lambda i: i)
    server = RedisServer(args=["--slowlog-log-slower-than", "1000", "--slowlog-max-len", "100000",
                               "--latency-monitor-threshold", str(args.latency_ms)])  # fmt: skip
    server.start()
    if args.redis_nice:
        # Only to tell Redis's own cost from time spent waiting for a core on a shared machine.
        os.setpriority(os.PRIO_PROCESS, server.proc.pid, args.redis_nice)
    report: dict[str, object] = {
        "waiting": args.waiting,
        "dead": args.dead,
        "redis_nice": args.redis_nice,
        "cpus": os.cpu_count(),
        "started_load1": os.getloadavg()[0],
    }
    try:
        tq = TaskQueue(server.url, registry=reg, broker_options={"dead_max": args.dead * 2})
        r, names = tq.redis, sha_names()
        report["redis"] = r.info("server")["redis_version"]
        ph = Phases(r, names)
        base_mem = r.info("memory")["used_memory"]
        head: list[str] = []

        def fill() -> dict:
            chunk = 100_000
            for at in range(0, args.waiting, chunk):
                n = min(chunk, args.waiting - at)
                ids = tq.enqueue_many([(noop, (i,)) for i in range(at, at + n)])
                ph.progress.append((ph.now(), at + n))
                if len(head) < args.head_cancels:
                    head.extend(ids[: args.head_cancels - len(head)])
                if (at + n) % 1_000_000 == 0:
                    print(f"enqueued {at + n:,}", file=sys.stderr, flush=True)
            mem = r.info("memory")["used_memory"]
            return {"bytes_per_waiting_job": round((mem - base_mem) / max(1, args.waiting))}

        report["fill"] = ph.run("fill", fill)
        report["enqueue_many_jobs_per_s"] = round(args.waiting / ph.out["fill"]["s"])

        def dead_fill() -> dict:
            # The dead letter: its own queue, fetched and failed without retry, 100 calls a trip.
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
            used = r.info("memory")["used_memory"] - base_mem
            return {"bytes_per_job_all": round(used / max(1, args.waiting + args.dead)),
                    "used_memory_gb": round(r.info("memory")["used_memory"] / 1e9, 2)}  # fmt: skip

        report["dead_fill"] = ph.run("dead_fill", dead_fill)
        # Operations against the full state, each phase with every call in SLOWLOG.
        tail: list[str] = []
        enqueue_tail = lambda: tail.extend(tq.enqueue(noop, i) for i in range(1000))  # noqa: E731
        ph.run("single_enqueue_x1000", enqueue_tail)
        ph.run("cancel_tail_x200", lambda: sum(tq.cancel(j) for j in tail[:200]), every_call=True)
        ph.run("cancel_head", lambda: sum(tq.cancel(j) for j in head), every_call=True)

        def lengths() -> dict:
            return {"llen": r.llen(tq.keys.ready("default")),
                    "tombstones": int(r.hget(tq.keys.tombs, "default") or 0),
                    "reported_queued": tq.queue_lengths()["default"]["queued"]}  # fmt: skip

        ph.run("lengths_after_cancels", lengths)

        def fetch_ack() -> dict:
            calls = leased = short = 0
            while leased < 1000:
                res = tq.run(tq.broker.fetch(["default"], 10, "tok", "bench"))
                calls += 1
                short += len(res.jobs) < 10
                leased += len(res.jobs)
                if res.jobs:
                    tq.run(tq.broker.ack([(j, encode_result(None)) for j in res.jobs]))
            return {"fetch_calls": calls, "short_fetches": short, "leased": leased}

        ph.run("fetch10_ack_through_tombstones", fetch_ack, every_call=True)
        ph.run("lengths_after_fetch", lengths)
        ph.run("recover", lambda: tq.run(tq.broker.recover(["default", "doomed"])), every_call=True)

        def trim(by: str) -> dict:
            # A full dead letter: each fail that adds one trims at most 10 (by count or by age).
            n = 100
            before = r.zcard(tq.keys.dead)
            opts = (
                {"dead_max": before - 10 * n}
                if by == "count"
                else {"dead_age_ms": 1, "dead_max": 2 * before}
            )
            trimming = Broker(tq.keys, **opts)
            tq.enqueue_many([(doomed, (i,)) for i in range(n)])
            got: list = []
            while len(got) < n:
                got += tq.run(tq.broker.fetch(["doomed"], n, "trim", "bench")).jobs
            for j in got:
                tq.run(trimming.fail(j, "Boom: trim", "", 0, retry=False))
            return {"fail_calls": n, "dead_before": before, "dead_after": r.zcard(tq.keys.dead)}

        ph.run("trim_by_count", lambda: trim("count"), every_call=True)
        ph.run("trim_by_age", lambda: trim("age"), every_call=True)
        ph.run("dead_retry_all", tq.retry_dead)

        def purge() -> int:
            total = 0
            for queue in ("default", "doomed"):
                taken = 1
                while taken:
                    purged, taken = tq.run(tq.broker.purge(queue))
                    total += purged
                    if total % 100_000 < purged:
                        ph.progress.append((ph.now(), total))
            return total

        ph.run("purge", purge)
        ph.run("lengths_after_purge", lengths)
        report["phases"] = ph.out
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
        report["slowest_per_script_ms"] = slowest(ph.out)
    finally:
        server.close()
    save_result("huge", report)
    return 0


def slowest(phases: dict) -> dict[str, float]:
    """Each script's slowest logged call over every phase."""
    out: dict[str, float] = {}
    for row in phases.values():
        for name, s in row["slowlog"].items():
            out[name] = max(out.get(name, 0.0), s["max_ms"])
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


if __name__ == "__main__":
    sys.exit(main())
