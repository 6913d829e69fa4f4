"""The conservation invariant under a randomized mix of every operation (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskqueue import TaskQueue
from taskqueue.serialization import encode_result
from taskqueue.testing import assert_conserved

OPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "enqueue",
                "enqueue_delayed",
                "enqueue_key",
                "fetch",
                "ack",
                "fail",
                "fail_dead",
                "release",
                "stall",
                "cancel",
                "fetch_short",
                "extend",
                "release_worker",
                "recover",
                "retry_dead",
                "dead_delete",
                "purge",
                "pause",
                "resume",
            ]
        ),  # fmt: skip
        st.integers(min_value=0, max_value=50),
    ),
    min_size=1,
    max_size=60,
)


@pytest.mark.smoke
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_every_job_is_in_exactly_one_place_after_any_mix(redis_url: str, ops) -> None:
    c = TaskQueue(redis_url, broker_options={"lease_ms": 60_000, "max_stalls": 1})
    # Leases of 1 ms lapse at once, so `recover` really requeues (or dead-letters) them.
    short = TaskQueue(redis_url, broker_options={"lease_ms": 1, "max_stalls": 1})
    c.redis.flushall()
    queues = ["a", "b"]
    ids: list[str] = []
    held = []
    for op, n in ops:
        q = queues[n % 2]
        if op == "enqueue":
            ids.append(c.enqueue_with("t", (n,), strict=False, queue=q, max_retries=n % 3))
        elif op == "enqueue_delayed":
            ids.append(c.enqueue_with("t", (n,), strict=False, queue=q, delay=n % 2 * 0.001))
        elif op == "enqueue_key":
            job_id = c.enqueue_with("t", (n,), strict=False, queue=q, key=f"k{n % 5}")
            if job_id not in ids:
                ids.append(job_id)
        elif op == "fetch":
            held += c.run(c.broker.fetch(queues, n % 4 + 1, f"tok{n}", "w")).jobs
        elif op == "fetch_short":
            held += short.run(short.broker.fetch(queues, n % 4 + 1, f"short{n}", "w2")).jobs
        elif op == "extend" and held:
            c.run(c.broker.extend([(j.id, j.queue, j.token) for j in held[: n % 4 + 1]]))
        elif op == "release_worker":
            c.run(c.broker.release_worker("w" if n % 2 else "w2", stalled=n % 3 == 0))
        elif held and op in ("ack", "fail", "fail_dead", "release", "stall"):
            job = held.pop(n % len(held))
            if op == "ack":
                c.run(c.broker.ack([(job, encode_result(n))]))
            elif op.startswith("fail"):
                c.run(c.broker.fail(job, "E: x", "", n % 3, retry=op == "fail"))
            else:
                c.run(c.broker.release([(job.id, job.queue, job.token)], stalled=op == "stall"))
        elif op == "cancel" and ids:
            c.cancel(ids[n % len(ids)])
        elif op == "recover":
            c.run(c.broker.recover(queues))
        elif op == "retry_dead":
            c.retry_dead()
        elif op == "dead_delete":
            c.delete_dead()
            ids = [i for i in ids if c.redis.exists(c.keys.job(i))]
        elif op == "purge":
            c.purge(q)
        elif op == "pause":
            c.pause(q)
        elif op == "resume":
            c.resume(q)
    places = assert_conserved(c.redis, ids)
    assert sum(places.values()) == len(ids)
    c.close()
    short.close()
