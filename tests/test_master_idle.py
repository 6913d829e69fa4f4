"""An idle pool does not poll Redis. Every command the server runs in a quiet window is
attributed, through MONITOR, to the process whose connection sent it: the worker processes send
only their long blocking waits, and the master only its status record and lease housekeeping."""

from __future__ import annotations

import threading
from collections import Counter

import psutil
import pytest
import redis

from taskqueue.connection import connect
from taskqueue.keys import Keys
from taskqueue.testing import wait_for


def local_ports(pid: int) -> set[int]:
    proc = psutil.Process(pid)
    conns = proc.net_connections("tcp") if hasattr(proc, "net_connections") else proc.connections()
    return {c.laddr.port for c in conns if c.raddr}


def slot_owner(url: str) -> str:
    """The plain URL of the server that holds the namespace: on a cluster, the primary that
    owns its slot (the workers' waits and the master's records all go there)."""
    client = connect(url)
    if not isinstance(client, redis.RedisCluster):
        return url
    node = client.get_node_from_key(Keys().stats)
    client.close()
    return f"redis://{node.host}:{node.port}"


def monitor(url: str, seconds: float) -> list[tuple[int, str]]:
    """(client port, command) of every command the server ran during ``seconds``."""
    seen: list[tuple[int, str]] = []
    client = redis.Redis.from_url(url)
    with client.monitor() as mon:
        done = threading.Event()
        killer = threading.Timer(seconds, lambda: (done.set(), redis.Redis.from_url(url).ping()))
        killer.start()
        for cmd in mon.listen():
            if done.is_set():
                break
            if cmd.get("client_type") == "lua":
                continue  # run inside a script that the EVALSHA line already counts
            seen.append((int(cmd.get("client_port") or 0), cmd["command"].split()[0].upper()))
    return seen


@pytest.mark.slow
@pytest.mark.cluster
def test_idle_pool_does_not_poll_redis(redis_url, masters) -> None:
    m = masters(redis_url, "-w", "2")
    pids = m.wait_workers(2)
    node = slot_owner(redis_url)
    # Start-up traffic (boot fetches, first heartbeats) is over once a 2 s window is quiet.
    wait_for(lambda: len(monitor(node, 2.0)) <= 3, 30, "start-up traffic to settle")
    window = 16.0
    seen = monitor(node, window)
    # A forked worker also holds the master's inherited sockets: those count as the master's.
    master_ports = local_ports(m.proc.pid)
    worker_ports = set().union(*(local_ports(p) for p in pids)) - master_ports
    by_worker = Counter(cmd for port, cmd in seen if port in worker_ports)
    by_master = Counter(cmd for port, cmd in seen if port in master_ports)
    # A connection opened and closed inside the window has left no trace to attribute it by:
    # count its commands against the master's budget (the stricter reading).
    by_master.update(cmd for port, cmd in seen if port not in worker_ports | master_ports)
    # Each worker renews at most one long blocking wait in the window; a worker polling once a
    # second would send 16 commands here.
    assert by_worker.total() <= 2 * 2, f"idle workers sent {dict(by_worker)} in {window:.0f}s"
    # The master: its status record every 2 s (8 SETs), every 10 s its registration in the
    # masters set and its registered tasks, lease recovery every 10-20 s and its control inbox's
    # blocking wait (15-18 measured); a master that also polled once a second would send 16 more.
    assert by_master.total() <= window / 2 + 12, f"idle master sent {dict(by_master)}"
    # And it still reacts at once: a job enqueued now runs promptly.
    from taskqueue import TaskQueue

    tq = TaskQueue(redis_url)
    job = tq.enqueue_with("m.noop", (5,), strict=False)
    wait_for(lambda: tq.status(job).state == "succeeded", 10, "the job to run")
    assert m.stop() == 0
