"""Measurements: each function runs one phase against one library and returns plain numbers.

The harness owns a private redis-server; every phase begins from a known state (FLUSHALL, or a
queue it just filled). Worker trees are started as their own process groups and stopped by
process-group id.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import redis
from adapters import ADAPTERS, Adapter, TaskQueueAdapter, TaskQueueAsyncAdapter

COUNTER = "bench:counter"
LATENCY = "bench:latency"
#: Commands the harness itself sends while measuring; removed from the per-job counts.
OWN_COMMANDS = ("cmdstat_info", "cmdstat_config|resetstat")
SCRIPT_COMMANDS = ("cmdstat_eval", "cmdstat_evalsha", "cmdstat_fcall", "cmdstat_eval_ro",
                   "cmdstat_evalsha_ro")  # fmt: skip


class BenchError(RuntimeError):
    pass


# -- Redis-side counters -----------------------------------------------------------------------
def commandstats(r: redis.Redis) -> dict[str, int]:
    return {k: int(v["calls"]) for k, v in r.info("commandstats").items()}


def command_delta(before: dict[str, int], after: dict[str, int], polls: int = 0) -> dict:
    """Commands executed between two snapshots (those inside Lua scripts included), minus the
    harness's own INFO calls and ``polls`` GETs of the counter."""
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    for k in OWN_COMMANDS:
        delta.pop(k, None)
    if polls:
        delta["cmdstat_get"] = delta.get("cmdstat_get", 0) - polls
    delta = {k: v for k, v in delta.items() if v > 0}
    return {
        "total": sum(delta.values()),
        "scripts": sum(delta.get(k, 0) for k in SCRIPT_COMMANDS),
        "by_command": dict(sorted(delta.items(), key=lambda kv: -kv[1])),
    }


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


# -- worker trees ------------------------------------------------------------------------------
class WorkerTree:
    """The worker processes of one library: one or more roots, each in its own process group."""

    def __init__(self, cmds: list[list[str]], env: dict[str, str], log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in stop())
            "w+b", dir=log_dir, prefix="workers-", suffix=".log", delete=False
        )
        self.cmds = cmds
        self.roots: list[subprocess.Popen] = []
        for cmd in cmds:
            self.roots.append(
                subprocess.Popen(
                    cmd,
                    env=env,
                    cwd=env.get("BENCH_APPS") or None,
                    stdout=self.log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        self.started = time.perf_counter()

    def processes(self) -> list[psutil.Process]:
        out: list[psutil.Process] = []
        for root in self.roots:
            try:
                p = psutil.Process(root.pid)
                out.append(p)
                out.extend(p.children(recursive=True))
            except psutil.NoSuchProcess:
                pass
        return out

    def alive(self) -> bool:
        return all(root.poll() is None for root in self.roots)

    def cpu(self) -> float:
        total = 0.0
        for p in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += cpu_seconds(p)
        return total

    def memory(self) -> list[dict[str, Any]]:
        out = []
        for p in self.processes():
            try:
                info = p.memory_full_info()
                argv = p.cmdline()
                if argv and argv[0].startswith("/") and Path(argv[0]).exists():
                    argv = [Path(argv[0]).name, *argv[1:]]  # else a title set by setproctitle
                cmd = " ".join(argv).strip()
                out.append({"pid": p.pid, "cmd": cmd[:120], "rss": info.rss, "uss": info.uss})
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return out

    def tail(self, n: int = 3000) -> str:
        self.log.flush()
        try:
            data = Path(self.log.name).read_bytes()
        except OSError:
            return ""
        return data[-n:].decode("utf-8", "replace")

    def stop(self, timeout: float = 10.0) -> None:
        for root in self.roots:
            if root.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(root.pid, signal.SIGTERM)
        end = time.monotonic() + timeout
        for root in self.roots:
            with contextlib.suppress(subprocess.TimeoutExpired):
                root.wait(timeout=max(0.1, end - time.monotonic()))
        for root in self.roots:  # whatever is left of each group (children included)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(root.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                root.wait(timeout=5)
        self.log.close()
        with contextlib.suppress(OSError):
            os.unlink(self.log.name)


# -- phases ------------------------------------------------------------------------------------
class Bench:
    def __init__(self, r: redis.Redis, redis_pid: int, log_dir: Path) -> None:
        self.r = r
        self.redis_proc = psutil.Process(redis_pid)
        self.log_dir = log_dir

    def flush(self) -> None:
        self.r.flushall()

    def count(self) -> int:
        return int(self.r.get(COUNTER) or 0)

    def enqueue_single(self, a: Adapter, n: int) -> dict:
        self.flush()
        xs = list(range(n))
        before = commandstats(self.r)
        t = time.perf_counter()
        a.enqueue_seq(xs)
        dt = time.perf_counter() - t
        cmds = command_delta(before, commandstats(self.r))
        return {"rate": n / dt, "seconds": dt, "cmds_per_job": cmds["total"] / n}

    def enqueue_bulk(self, a: Adapter, xs: list) -> dict | None:
        """Bulk-enqueue ``xs`` (left queued for the drain). None if the library has no bulk API;
        the jobs are then queued with its single-call API, untimed."""
        self.flush()
        if not a.bulk_api:
            a.prefill(xs)
            return None
        before = commandstats(self.r)
        t = time.perf_counter()
        a.enqueue_bulk(xs)
        dt = time.perf_counter() - t
        cmds = command_delta(before, commandstats(self.r))
        return {"rate": len(xs) / dt, "seconds": dt, "cmds_per_job": cmds["total"] / len(xs)}

    def start(self, a: Adapter, procs: int, conc: int) -> WorkerTree:
        env = a.worker_env(conc)
        return WorkerTree(a.worker_cmds(procs, conc), env, self.log_dir)

    def wait_count(self, tree: WorkerTree, target: int, timeout: float) -> dict:
        """Poll the counter until it reaches ``target``; snapshot costs at the first job."""
        r = self.r
        polls = 0
        first: dict | None = None
        end = time.monotonic() + timeout
        while True:
            n = int(r.get(COUNTER) or 0)
            polls += 1
            now = time.perf_counter()
            if first is None and n > 0:
                first = {"t": now, "n": n, "cpu": tree.cpu(), "redis_cpu": cpu_seconds(
                    self.redis_proc), "cmds": commandstats(r), "polls": polls}  # fmt: skip
            if n >= target:
                break
            if not tree.alive():
                raise BenchError(f"a worker process exited; log tail:\n{tree.tail()}")
            if time.monotonic() > end:
                raise BenchError(f"counter at {n}/{target} after {timeout:.0f}s; log tail:\n"
                                 f"{tree.tail()}")  # fmt: skip
            time.sleep(0.002 if first else 0.01)
        assert first is not None
        return {"t": now, "n": n, "cpu": tree.cpu(), "redis_cpu": cpu_seconds(self.redis_proc),
                "cmds": commandstats(r), "polls": polls, "first": first}  # fmt: skip

    def drain(self, a: Adapter, tree: WorkerTree, jobs: int, timeout: float) -> dict:
        """Workers were just started on ``jobs`` queued jobs: time until all have run."""
        done = self.wait_count(tree, jobs, timeout)
        first = done["first"]
        total = done["t"] - tree.started
        steady_jobs = done["n"] - first["n"]
        steady_s = max(done["t"] - first["t"], 1e-9)
        cmds = command_delta(first["cmds"], done["cmds"], done["polls"] - first["polls"])
        worker_cpu = done["cpu"] - first["cpu"]
        redis_cpu = done["redis_cpu"] - first["redis_cpu"]
        per = max(steady_jobs, 1)
        return {
            "rate": jobs / total,
            "seconds": total,
            "startup_seconds": first["t"] - tree.started,
            "steady_rate": steady_jobs / steady_s,
            "cmds_per_job": cmds["total"] / per,
            "script_calls_per_job": cmds["scripts"] / per,
            "cmds_by_command": {k: round(v / per, 3) for k, v in cmds["by_command"].items()},
            "cpu_per_1000": (worker_cpu + redis_cpu) / per * 1000,
            "worker_cpu_per_1000": worker_cpu / per * 1000,
            "redis_cpu_per_1000": redis_cpu / per * 1000,
        }

    def idle(self, tree: WorkerTree, procs: int, window: float) -> dict:
        """Memory of the idle worker tree, and the Redis commands it sends per second."""
        time.sleep(1.0)
        mem = tree.memory()
        before = commandstats(self.r)
        time.sleep(window)
        cmds = command_delta(before, commandstats(self.r))
        if not tree.alive():
            raise BenchError(f"a worker process exited while idle; log tail:\n{tree.tail()}")
        return {
            "rss_total": sum(p["rss"] for p in mem),
            "uss_total": sum(p["uss"] for p in mem),
            "processes": mem,
            "cmds_per_s": cmds["total"] / window,
            "cmds_per_s_per_worker": cmds["total"] / window / procs,
            "idle_by_command": cmds["by_command"],
        }

    def latency(self, a: Adapter, tree: WorkerTree, rate: float, n: int) -> dict:
        """Enqueue→start latency at a steady rate, workers idle beforehand."""
        self.r.delete(LATENCY)
        self.r.set(COUNTER, 0)
        a.paced(rate, n)
        self.wait_count(tree, n, timeout=60 + n / rate)
        lat = sorted(int(x) / 1000.0 for x in self.r.lrange(LATENCY, 0, -1))
        if len(lat) < n:
            raise BenchError(f"only {len(lat)} of {n} latency samples")
        return {
            "p50_ms": percentile(lat, 50),
            "p95_ms": percentile(lat, 95),
            "p99_ms": percentile(lat, 99),
            "max_ms": lat[-1],
            "samples": len(lat),
        }


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def summarize(values: list[float | None]) -> dict | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def print_medians(res: dict[str, list[dict]], keys: tuple[str, ...]) -> None:
    """One line per library and key: median, min and max over the runs (interleaved scripts)."""
    for n, runs in res.items():
        for key in keys:
            s = summarize([r[key] for r in runs])
            if s is not None:
                print(f"{n:16s} {key:17s} median {s['median']:9.3f} "
                      f"min {s['min']:9.3f} max {s['max']:9.3f}")  # fmt: skip


def _on_tree(cls: type, tree: str) -> type:
    """``cls`` named ``<name>-base``, its workers running the code of checkout ``tree``."""

    class Base(cls):  # type: ignore[misc, valid-type]
        name = f"{cls.name}-base"

        def worker_env(self, conc: int) -> dict[str, str]:
            return super().worker_env(conc) | {"PYTHONPATH": tree}

    return Base


def interleaved_setup(names: list[str], base_tree: str | None, log_dir: Path) -> tuple:
    """What the interleaved scripts share: with ``base_tree``, ``taskqueue-base`` and
    ``taskqueue-async-base`` adapters whose workers run that older checkout; a private redis-server; a Bench on it; the adapters of
    ``names``. Returns (server, bench, {name: adapter})."""
    from taskqueue.testing.server import RedisServer

    if base_tree:
        for cls in (TaskQueueAdapter, TaskQueueAsyncAdapter):
            ADAPTERS[f"{cls.name}-base"] = _on_tree(cls, base_tree)
    server = RedisServer().start()
    os.environ["BENCH_REDIS_URL"] = server.url
    bench = Bench(server.client(), server.proc.pid, log_dir)
    return server, bench, {n: ADAPTERS[n](server.url) for n in names}
