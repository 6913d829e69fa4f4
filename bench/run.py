#!/usr/bin/env python3
"""taskqueue vs Celery, RQ, Dramatiq, arq, Huey and SAQ on the same workload (see README.md).

    python bench/run.py                      # everything: creates bench/.venv-peers first
    python bench/run.py --quick              # a few minutes: fewer jobs, one run
    python bench/run.py --only taskqueue --jobs 500 --runs 1 --no-venv

Starts a private redis-server on a free loopback port; never touches any other Redis.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv-peers"
REQUIREMENTS = BENCH / "requirements-peers.txt"
#: Untimed drain before a library's first run (imports, script cache, page cache warm).
WARMUP_JOBS = 2000
#: taskqueue with a sync (``def``) task is the headline; taskqueue-async runs an async one.
LIBRARIES = ("taskqueue", "taskqueue-async", "celery", "rq", "dramatiq", "arq", "huey", "saq")


# -- virtualenv bootstrap ----------------------------------------------------------------------
def _venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv() -> None:
    """Create/refresh bench/.venv-peers (peers, psutil, matplotlib, py-spy, taskqueue -e) and
    re-exec this script inside it. Skipped with --no-venv (then the current interpreter must
    have what the selected libraries need)."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    want = hashlib.sha256(REQUIREMENTS.read_bytes() + (ROOT / "pyproject.toml").read_bytes())
    stamp = VENV / ".bench-stamp"
    py = _venv_python()
    if not py.exists() or not stamp.exists() or stamp.read_text() != want.hexdigest():
        print(f"[bench] installing the bench virtualenv in {VENV} ...", flush=True)
        if not py.exists():
            subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
        pip = [str(py), "-m", "pip", "install", "-q"]
        subprocess.check_call(pip + ["--upgrade", "pip"])
        subprocess.check_call(pip + ["-r", str(REQUIREMENTS), "-e", str(ROOT)])
        stamp.write_text(want.hexdigest())
    os.execv(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])


# -- CLI ---------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer jobs, one run, short windows")
    p.add_argument("--only", default="", help=f"comma-separated subset of {','.join(LIBRARIES)}")
    p.add_argument("--skip", default="", help="comma-separated libraries to leave out")
    p.add_argument("--jobs", type=int, help="jobs in the drain and bulk phases (default 20000)")
    p.add_argument("--enqueue-jobs", type=int, help="jobs in the one-per-call enqueue phase")
    p.add_argument("--runs", type=int, help="repetitions per figure (default 3; median reported)")
    p.add_argument("--procs", type=int, default=2, help="worker processes (default 2 = cores)")
    p.add_argument("--concurrency", type=int, default=10,
                   help="threads/async slots per process where the library offers them")  # fmt: skip
    p.add_argument("--latency-seconds", type=float, help="length of the 200 jobs/s phase")
    p.add_argument("--idle-seconds", type=float, help="idle window for Redis commands/s")
    p.add_argument("--no-scaling", action="store_true", help="skip the scaling runs")
    p.add_argument("--no-backlog", action="store_true", help="skip the 10k vs 1M backlog runs")
    p.add_argument("--scale-peers", action="store_true",
                   help="also run the process/concurrency/payload scaling for the peers")  # fmt: skip
    p.add_argument("--out", type=Path, default=BENCH / "results", help="results directory")
    p.add_argument("--no-readme", action="store_true", help="do not rewrite bench/README.md")
    p.add_argument("--no-venv", action="store_true",
                   help="run in the current interpreter instead of bench/.venv-peers")  # fmt: skip
    p.add_argument("--timeout", type=float, default=300.0, help="longest drain (s) before failing")
    a = p.parse_args(argv)
    a.runs = a.runs or (1 if a.quick else 3)
    a.jobs = a.jobs or (5000 if a.quick else 20000)
    a.enqueue_jobs = a.enqueue_jobs or min(a.jobs, 2000 if a.quick else 5000)
    a.latency_seconds = a.latency_seconds or (3.0 if a.quick else 10.0)
    a.idle_seconds = a.idle_seconds or (3.0 if a.quick else 10.0)
    libs = [x.strip() for x in a.only.split(",") if x.strip()] or list(LIBRARIES)
    skip = {x.strip() for x in a.skip.split(",") if x.strip()}
    unknown = (set(libs) | skip) - set(LIBRARIES)
    if unknown:
        p.error(f"unknown libraries: {', '.join(sorted(unknown))}")
    a.libraries = [x for x in libs if x not in skip]
    return a


# -- orchestration -----------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def machine() -> dict:
    import psutil

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        # The Redis client every Python library here talks through, and its parser.
        "clients": {name: _dist_version(name) for name in ("redis", "hiredis")},
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def git_state() -> dict:
    """Commit of the tree measured, and whether taskqueue/ had uncommitted changes."""

    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip()  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return ""

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "taskqueue_dirty": bool(git("status", "--porcelain", "--", "taskqueue"))}  # fmt: skip


def one_round(bench, a, args, procs: int, conc: int) -> dict:
    """One full run of the workload for one library: enqueue, bulk, drain, idle, latency."""
    res: dict = {}
    res["enqueue_single"] = bench.enqueue_single(a, args.enqueue_jobs)
    res["enqueue_bulk"] = bench.enqueue_bulk(a, list(range(args.jobs)))
    tree = bench.start(a, procs, conc)
    try:
        res["drain"] = bench.drain(a, tree, args.jobs, args.timeout)
        res["idle"] = bench.idle(tree, procs, args.idle_seconds)
        n = max(int(200 * args.latency_seconds), 50)
        res["latency"] = bench.latency(a, tree, 200.0, n)
    finally:
        tree.stop()
    return res


def skip(result: dict, name: str, exc: BaseException) -> None:
    reason = f"{type(exc).__name__}: {exc}".strip()[:2000]
    log(f"{name}: SKIPPED: {reason}")
    traceback.print_exc()
    result["skipped"][name] = reason


def drain_only(bench, a, args, procs: int, conc: int, jobs: int, arg) -> dict:
    bench.flush()
    a.prefill([arg] * jobs)
    tree = bench.start(a, procs, conc)
    try:
        return bench.drain(a, tree, jobs, args.timeout)
    finally:
        tree.stop()


def open_library(name: str, url: str, bench, args) -> dict:
    """The adapter of one library and its (empty) results, after an untimed warm-up drain
    (imports, bytecode caches, Redis scripts loaded, page cache warm)."""
    from adapters import ADAPTERS

    a = ADAPTERS[name](url)
    warm = min(args.jobs, WARMUP_JOBS)
    log(f"{name}: warm-up drain of {warm} jobs")
    drain_only(bench, a, args, args.procs, args.concurrency, warm, 0)
    return {
        "adapter": a,
        "version": a.version(),
        "config": a.describe(args.procs, args.concurrency),
        "bulk_api": a.bulk_api,
        "runs": [],
    }


def machine_load() -> dict:
    """What else loads the machine at the start of a run: the 1-minute load average and the
    CPU share of processes outside this benchmark over 0.5 s."""
    import psutil

    me = {os.getpid(), *(c.pid for c in psutil.Process().children(recursive=True))}
    others = [p for p in psutil.process_iter() if p.pid not in me]
    for p in others:
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)
    time.sleep(0.5)
    busy = 0.0
    for p in others:
        with contextlib.suppress(psutil.Error):
            busy += p.cpu_percent(None)
    return {"load1": os.getloadavg()[0], "others_cpu_percent": round(busy, 1)}


def run_once(name: str, out: dict, bench, args, i: int) -> None:
    a = out["adapter"]
    load = machine_load()
    if load["others_cpu_percent"] > 50:
        log(f"WARNING: other processes use {load['others_cpu_percent']:.0f}% CPU "
            f"(load {load['load1']:.1f}): wall-clock figures of this run are not comparable")  # fmt: skip
    log(f"{name}: run {i + 1}/{args.runs}")
    r = one_round(bench, a, args, args.procs, args.concurrency)
    r["load"] = load
    out["runs"].append(r)
    d, lat = r["drain"], r["latency"]
    log(f"{name}: enqueue {r['enqueue_single']['rate']:.0f}/s, bulk "
        f"{(r['enqueue_bulk'] or {}).get('rate', 0):.0f}/s, drain {d['rate']:.0f}/s "
        f"(steady {d['steady_rate']:.0f}/s), p99 {lat['p99_ms']:.1f} ms, idle USS "
        f"{r['idle']['uss_total'] / 2**20:.1f} MiB, idle {r['idle']['cmds_per_s']:.2f} "
        "cmds/s")  # fmt: skip


def close_library(name: str, out: dict, bench, args) -> dict:
    from harness import summarize

    a = out.pop("adapter")
    try:
        runs = out["runs"]

        def pick(*path):
            vals = []
            for r in runs:
                v = r
                for k in path:
                    v = None if v is None else v.get(k)
                vals.append(v)
            return summarize(vals)

        out["summary"] = {
            "enqueue_rate": pick("enqueue_single", "rate"),
            "enqueue_cmds_per_job": pick("enqueue_single", "cmds_per_job"),
            "bulk_rate": pick("enqueue_bulk", "rate"),
            "drain_rate": pick("drain", "rate"),
            "drain_steady_rate": pick("drain", "steady_rate"),
            "drain_startup_s": pick("drain", "startup_seconds"),
            "cmds_per_job": pick("drain", "cmds_per_job"),
            "script_calls_per_job": pick("drain", "script_calls_per_job"),
            "cpu_per_1000": pick("drain", "cpu_per_1000"),
            "worker_cpu_per_1000": pick("drain", "worker_cpu_per_1000"),
            "redis_cpu_per_1000": pick("drain", "redis_cpu_per_1000"),
            "latency_p50_ms": pick("latency", "p50_ms"),
            "latency_p95_ms": pick("latency", "p95_ms"),
            "latency_p99_ms": pick("latency", "p99_ms"),
            "idle_rss": pick("idle", "rss_total"),
            "idle_uss": pick("idle", "uss_total"),
            "idle_cmds_per_s": pick("idle", "cmds_per_s"),
            "idle_cmds_per_s_per_worker": pick("idle", "cmds_per_s_per_worker"),
            "load1": pick("load", "load1"),
            "others_cpu_percent": pick("load", "others_cpu_percent"),
        }
        if (name == "taskqueue" or args.scale_peers) and not args.no_scaling:
            out["scaling"] = scaling(name, a, bench, args)
        if name == "taskqueue" and not args.no_backlog:
            out["backlog"] = backlog(a, bench, args)
    finally:
        a.close()
    return out


def scaling(name: str, a, bench, args) -> dict:
    from harness import summarize

    jobs = args.jobs
    cases: list[tuple[str, str, int, int, int, object]] = []
    for procs in (1, 2, 4):
        cases.append(("processes", str(procs), procs, args.concurrency, jobs, 1))
    for conc in (1, 10, 100):
        cases.append(("concurrency", str(conc), args.procs, conc, jobs, 1))
    for size, label in ((100, "100 B"), (10_000, "10 KB"), (500_000, "500 KB")):
        n = jobs if size <= 10_000 else max(50, min(jobs, 1000))
        cases.append(("payload", label, args.procs, args.concurrency, n, "x" * size))
    out: dict = {}
    for kind, label, procs, conc, n, arg in cases:
        rates, steady = [], []
        for _ in range(args.runs):
            d = drain_only(bench, a, args, procs, conc, n, arg)
            rates.append(d["rate"])
            steady.append(d["steady_rate"])
        out.setdefault(kind, {})[label] = {
            "procs": procs,
            "concurrency": conc,
            "jobs": n,
            "rate": summarize(rates),
            "steady_rate": summarize(steady),
        }
        log(f"{name}: scaling {kind}={label}: {out[kind][label]['rate']['median']:.0f} jobs/s "
            f"(steady {out[kind][label]['steady_rate']['median']:.0f})")  # fmt: skip
    return out


def backlog(a, bench, args) -> dict:
    """taskqueue: single enqueue and fetch+ack cost with N jobs already waiting."""
    from harness import summarize

    sizes = (1_000, 20_000) if args.quick else (10_000, 1_000_000)
    tq, broker = a.tq, a.tq.broker
    task = a.task
    out: dict = {}
    for size in sizes:
        bench.flush()
        log(f"taskqueue: backlog {size:,}: filling")
        for i in range(0, size, 20_000):
            tq.enqueue_many([(task, (0,), None) for _ in range(min(20_000, size - i))])
        n = 2000
        enq, fetch = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            for _ in range(n):
                tq.enqueue(task, 0)
            enq.append((time.perf_counter() - t) / n * 1e6)
            batches = n // 10
            t = time.perf_counter()
            for k in range(batches):
                res = tq.run(broker.fetch(["default"], 10, f"bench:{k}", "bench"))
                tq.run(broker.ack([(job, b"\xc0") for job in res.jobs]))
            fetch.append((time.perf_counter() - t) / (batches * 10) * 1e6)
        waiting = tq.redis.llen(tq.keys.ready("default"))
        out[str(size)] = {
            "waiting": waiting,
            "enqueue_us": summarize(enq),
            "fetch_ack_us_per_job": summarize(fetch),
        }
        log(f"taskqueue: backlog {size:,}: enqueue {out[str(size)]['enqueue_us']['median']:.0f} "
            f"µs/call, fetch+ack {out[str(size)]['fetch_ack_us_per_job']['median']:.0f} µs/job")  # fmt: skip
    bench.flush()
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.no_venv:
        ensure_venv()
    sys.path.insert(0, str(BENCH))
    from harness import Bench

    from taskqueue.testing.server import RedisServer

    args.out.mkdir(parents=True, exist_ok=True)
    server = RedisServer().start()
    log(f"private redis-server {server.version()} on {server.url}")
    r = server.client()
    started = dt.datetime.now(dt.timezone.utc)
    result: dict = {
        "date": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "redis": ".".join(map(str, server.version())),
        "settings": {
            k: getattr(args, k)
            for k in (
                "quick",
                "jobs",
                "enqueue_jobs",
                "runs",
                "procs",
                "concurrency",
                "latency_seconds",
                "idle_seconds",
            )  # fmt: skip
        },
        "command": " ".join(["python bench/run.py", *sys.argv[1:]]),
        "git": git_state(),
        "libraries": {},
        "skipped": {},
    }
    bench = Bench(r, server.proc.pid, args.out / "logs")
    # Runs are interleaved (run 1 of every library, then run 2 ...) so that a change in what
    # else loads the machine spreads over every library instead of landing on one.
    opened: dict[str, dict] = {}
    try:
        for name in args.libraries:
            log(f"=== {name}")
            r.flushall()
            try:
                opened[name] = open_library(name, server.url, bench, args)
            except Exception as exc:  # a peer that cannot run is recorded, not fatal
                skip(result, name, exc)
        for i in range(args.runs):
            for name in list(opened):
                r.flushall()
                try:
                    run_once(name, opened[name], bench, args, i)
                except Exception as exc:
                    skip(result, name, exc)
                    opened.pop(name)["adapter"].close()
        for name, out in opened.items():
            r.flushall()
            result["libraries"][name] = close_library(name, out, bench, args)
        r.flushall()
    finally:
        r.close()
        server.close()
    result["seconds"] = round(time.time() - started.timestamp(), 1)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    path = args.out / f"bench-{stamp}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(result, indent=1))
    (args.out / "latest.json").write_text(json.dumps(result, indent=1))
    log(f"results: {path}")
    import report

    print(report.table(result))
    report.chart(result, args.out / "chart.png")
    if not args.no_readme:
        report.update_readme(result, BENCH / "README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
