"""The control for bench/huge_queues.py: the same kind of fill without any taskqueue script.

    .venv/bin/python bench/huge_control.py --keys 10000000 --redis-nice -10

Starts a private redis-server, writes job-like hashes with pipelined HSET (1,000 a round trip),
then gives each a TTL with PEXPIRE, and lists every command SLOWLOG saw over 20 ms with how many
keys had been written by then. If plain commands stall where the scripts did, the stall is
Redis's or the machine's, not a script's. Prints its figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskqueue.testing.server import RedisServer  # noqa: E402

#: A job record's fields, about the size of bench/huge_queues.py's (425 bytes a job).
FIELDS = {"task": "bench.noop", "queue": "default", "payload": b"\x92\x91\x01\x80" * 8,
          "state": "queued", "attempts": 0, "failures": 0, "max_retries": 3, "timeout_ms": 0,
          "enqueued_ms": 1764360000000, "id": "0" * 32, "dead_letter": 1, "ttl_ms": 3600000}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--keys", type=int, default=10_000_000)
    ap.add_argument("--redis-nice", type=int, default=0)
    args = ap.parse_args()
    server = RedisServer(args=["--slowlog-log-slower-than", "20000", "--slowlog-max-len", "10000"])
    server.start()
    if args.redis_nice:
        os.setpriority(os.PRIO_PROCESS, server.proc.pid, args.redis_nice)
    r = server.client()
    try:
        for phase in ("hset", "pexpire"):
            r.slowlog_reset()
            progress: list[tuple[int, int]] = []
            t0 = time.monotonic()
            for at in range(0, args.keys, 1000):
                pipe = r.pipeline(transaction=False)
                for i in range(at, min(at + 1000, args.keys)):
                    key = f"tq:{{default}}:job:{i:032x}"
                    if phase == "hset":
                        pipe.hset(key, mapping=FIELDS)
                    else:
                        pipe.pexpire(key, 3_600_000)
                pipe.execute()
                if at % 100_000 == 0:
                    progress.append((r.time()[0], at))
            stalls = []
            for e in r.slowlog_get(10_000):
                done = [n for t, n in progress if t <= e["start_time"] + 1]
                stalls.append((round(e["duration"] / 1000, 1), done[-1] if done else None))
            print(f"{phase}: {time.monotonic() - t0:.0f} s, load {os.getloadavg()[0]:.1f}, "
                  f"commands over 20 ms (ms, keys by then): {sorted(stalls, key=lambda s: s[1] or 0)}")  # fmt: skip
        print(f"used_memory {r.info('memory')['used_memory'] / 1e9:.2f} GB")
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
