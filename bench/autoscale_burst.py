"""Bursty load: the autoscaler against a fixed pool of min and of max workers.

    .venv/bin/pip install matplotlib      # for the chart (the numbers need nothing more)
    .venv/bin/python bench/autoscale_burst.py [--quick] [--modes auto,min,max]

Starts its own redis-server on a free loopback port. For each mode it starts one
``task-worker worker`` and plays the same trace: a trickle of jobs (one every 0.5 s) with two
bursts on top; each job is an asyncio sleep (I/O-bound, so the pool size, not the CPU, sets the
pace). Modes: ``auto`` (autoscaler on, min..max workers), ``min`` (a fixed pool of min),
``max`` (a fixed pool of max). Every 0.5 s the harness records the queue depth and the worker
processes alive (psutil); after the run it reads each job's enqueue and start times from its
record for the queue wait. Figures: jobs done, p95 and max queue wait, worker-seconds spent over
the whole trace (the cost). Writes ``bench/results/autoscale-<date>.json`` and
``bench/results/autoscale.png`` (queue depth, workers and rolling p95 wait over time).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.autoscale_tasks import work  # noqa: E402
from taskqueue import TaskQueue  # noqa: E402
from taskqueue.testing import RedisServer, wait_for  # noqa: E402

RESULTS = ROOT / "bench" / "results"
#: Autoscaler settings of the ``auto`` mode: short cooldowns so that a two-minute trace shows
#: both directions (production defaults are 60 s up, 300 s down).
AUTO_ENV = {
    "TASKQUEUE_AUTOSCALER__SAMPLE_INTERVAL": "1",
    "TASKQUEUE_AUTOSCALER__SCALE_UP_COUNT": "8",
    "TASKQUEUE_AUTOSCALER__SCALE_DOWN_COUNT": "2",
    "TASKQUEUE_AUTOSCALER__SCALING_TRIGGERS__SCALE_UP_COOLDOWN_SECONDS": "5",
    "TASKQUEUE_AUTOSCALER__SCALING_TRIGGERS__SCALE_DOWN_COOLDOWN_SECONDS": "15",
    "TASKQUEUE_AUTOSCALER__SCALING_TRIGGERS__CONSECUTIVE_SIGNALS_REQUIRED": "2",
}


def trace(quick: bool) -> list[tuple[float, int]]:
    """(second, jobs to enqueue then): a trickle plus two bursts."""
    horizon, bursts = (60.0, ((5.0, 120),)) if quick else (120.0, ((10.0, 240), (65.0, 240)))
    steps = [(t / 2, 1) for t in range(int(horizon * 2) - 20)]
    return sorted(steps + list(bursts))


def run_mode(mode: str, args: argparse.Namespace) -> dict:
    srv = RedisServer().start()
    tq = TaskQueue(srv.url)
    flags = [
        "-w",
        str(args.min if mode != "max" else args.max),
        "--max-concurrent-tasks",
        str(args.slots),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKQUEUE_")}
    if mode == "auto":
        flags += [
            "-a",
            "--autoscaler-min-workers",
            str(args.min),
            "--autoscaler-max-workers",
            str(args.max),
        ]
        env.update(AUTO_ENV)
    log = open(RESULTS / "logs" / f"autoscale-{mode}.log", "wb")  # noqa: SIM115
    master = subprocess.Popen(
        [sys.executable, "-m", "taskqueue.cli.worker", "worker", "-r", srv.url, "--import",
         "bench.autoscale_tasks", "--log-format", "compact", *flags],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    proc = psutil.Process(master.pid)

    def workers() -> int:
        return sum(1 for c in proc.children() if c.status() != psutil.STATUS_ZOMBIE)

    wait_for(lambda: workers() >= int(flags[1]), 30, "the first workers")
    time.sleep(2)  # let them boot
    plan, ids = trace(args.quick), []
    start = time.monotonic()
    horizon = plan[-1][0] + 20

    def produce() -> None:
        for at, n in plan:
            time.sleep(max(0.0, start + at - time.monotonic()))
            ids.extend(tq.enqueue_many([(work, (args.seconds, i)) for i in range(n)]))

    producer = threading.Thread(target=produce)
    producer.start()
    series = []
    while (t := time.monotonic() - start) < horizon:
        series.append(
            {
                "t": round(t, 2),
                "queued": tq.redis.llen(tq.keys.ready("default")),
                "workers": workers(),
            }
        )
        time.sleep(0.5)
    producer.join()
    wait_for(lambda: tq.redis.llen(tq.keys.ready("default")) == 0 and not tq.redis.zcard(tq.keys.active("default")),
             300, "the queue drained")  # fmt: skip
    master.terminate()
    master.wait(60)
    log.close()
    jobs = _jobs(tq, ids, start)
    tq.close()
    srv.close()
    return _summary(mode, series, jobs, len(ids))


def _jobs(tq: TaskQueue, ids: list[str], start: float) -> list[dict]:
    pipe = tq.redis.pipeline(transaction=False)
    for i in ids:
        pipe.hmget(tq.keys.job(i), "state", "enqueued_ms", "started_ms")
    wall0 = time.time() - (time.monotonic() - start)
    out = []
    for state, enq, started in pipe.execute():
        if enq and started:
            out.append(
                {
                    "state": state.decode(),
                    "t": int(enq) / 1000 - wall0,
                    "wait_ms": int(started) - int(enq),
                }
            )
    return out


def _p(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def _summary(mode: str, series: list[dict], jobs: list[dict], enqueued: int) -> dict:
    waits = [j["wait_ms"] for j in jobs]
    for s in series:  # rolling p95 of the waits of jobs enqueued in the 5 s before
        s["wait_p95_ms"] = _p([j["wait_ms"] for j in jobs if s["t"] - 5 <= j["t"] < s["t"]], 0.95)
    step = [b["t"] - a["t"] for a, b in zip(series, series[1:], strict=False)]
    worker_s = sum(s["workers"] * dt for s, dt in zip(series, step, strict=False))
    return {
        "mode": mode, "enqueued": enqueued, "done": sum(j["state"] == "succeeded" for j in jobs),
        "wait_p95_ms": _p(waits, 0.95), "wait_p50_ms": _p(waits, 0.5), "wait_max_ms": max(waits, default=None),
        "worker_seconds": round(worker_s, 1), "max_workers_seen": max(s["workers"] for s in series),
        "series": series,
    }  # fmt: skip


def chart(results: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            "[bench] matplotlib not installed (pip install matplotlib): no chart", file=sys.stderr
        )
        return
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    labels = {"auto": "autoscaler", "min": "fixed min", "max": "fixed max"}
    for r in results:
        ts = [s["t"] for s in r["series"]]
        name = f"{labels[r['mode']]} ({r['worker_seconds']:.0f} worker-s, p95 wait {r['wait_p95_ms'] / 1000:.1f} s)"
        axes[0].plot(ts, [s["queued"] for s in r["series"]], label=name)
        axes[1].step(ts, [s["workers"] for s in r["series"]], where="post", label=name)
        axes[2].plot(ts, [(s["wait_p95_ms"] or 0) / 1000 for s in r["series"]], label=name)
    for ax, title in zip(axes, ("jobs waiting", "worker processes", "queue wait p95, s (jobs of the last 5 s)"),
                         strict=True):  # fmt: skip
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[2].set_xlabel("seconds")
    fig.suptitle("Bursty load: autoscaler vs fixed pools")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"[bench] chart: {path.relative_to(ROOT)}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one burst, a one-minute trace")
    p.add_argument("--modes", default="auto,min,max")
    p.add_argument("--min", type=int, default=1)
    p.add_argument("--max", type=int, default=8)
    p.add_argument("--slots", type=int, default=4, help="max_concurrent_tasks of each worker")
    p.add_argument("--seconds", type=float, default=0.5, help="run time of one job")
    p.add_argument("--no-chart", action="store_true")
    args = p.parse_args()
    (RESULTS / "logs").mkdir(parents=True, exist_ok=True)
    results = []
    for mode in args.modes.split(","):
        r = run_mode(mode, args)
        results.append(r)
        print(f"{mode:>4}: {r['done']}/{r['enqueued']} done, wait p95 {r['wait_p95_ms']} ms "
              f"(max {r['wait_max_ms']}), {r['worker_seconds']} worker-s, up to {r['max_workers_seen']} workers")  # fmt: skip
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    out = {
        "commit": commit.stdout.strip(),
        "args": vars(args),
        "auto_env": AUTO_ENV,
        "results": results,
    }
    path = RESULTS / f"autoscale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"[bench] results: {path.relative_to(ROOT)}")
    if not args.no_chart:
        chart(results, RESULTS / "autoscale.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
