"""Soak under random SIGKILLs (issue 18): N jobs on real masters while worker processes and whole
masters are killed at seeded random moments; every run counted by the execution ledger.

    .venv/bin/python bench/soak.py --jobs 100000 --seed 1

Starts a private redis-server on a free loopback port (or uses --redis-url), prints progress and
a JSON summary (jobs, kills, runs, extra runs excused by kills, places, master RSS and Redis
memory in the first and last third of the run) and writes it to bench/results/soak-<time>.json.
Exit status 1 if the ledger finds a job lost or run twice without a kill to explain it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from report import save_result  # noqa: E402

from taskqueue.testing.server import RedisServer  # noqa: E402
from taskqueue.testing.soak import run_soak  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--masters", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="worker processes per master")
    ap.add_argument("--redis-url", help="use this Redis instead of a private one (it is flushed)")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument(
        "--master-kill-share",
        type=float,
        default=0.2,
        help="share of the kills that take a whole master (0: workers only, so the "
        "masters' RSS over the run shows a leak, not respawns)",
    )
    ap.add_argument("--max-tasks-per-child", type=int, default=0,
                    help="recycle each worker after this many jobs (0: never)")  # fmt: skip
    args = ap.parse_args()
    server = None
    if args.redis_url:
        url = args.redis_url
    else:
        server = RedisServer()
        server.start()
        url = server.url
    try:
        with tempfile.TemporaryDirectory(prefix="tq-soak-") as tmp:
            last = [0.0]

            def progress(line: str) -> None:
                if time.monotonic() - last[0] > 5:
                    last[0] = time.monotonic()
                    print(line, file=sys.stderr, flush=True)

            try:
                report = run_soak(url, Path(tmp), jobs=args.jobs, seed=args.seed,
                                  masters=args.masters, workers=args.workers,
                                  timeout=args.timeout, progress=progress,
                                  master_kill_share=args.master_kill_share,
                                  max_tasks_per_child=args.max_tasks_per_child)  # fmt: skip
            except AssertionError as exc:
                print(f"soak FAILED: {exc}", file=sys.stderr)
                return 1
    finally:
        if server is not None:
            server.stop()
    summary = {"seed": args.seed, "master_kill_share": args.master_kill_share,
               "max_tasks_per_child": args.max_tasks_per_child, **report.summary()}  # fmt: skip
    save_result("soak", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
