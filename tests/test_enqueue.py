"""Enqueue: validation with precise errors, idempotency keys, delays, bulk."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from taskqueue import TaskQueue, task
from taskqueue.errors import InvalidQueueName, PayloadTooLarge, SerializationError, UnknownTask

pytestmark = [pytest.mark.smoke, pytest.mark.cluster]


@pytest.fixture
def add(reg):
    @task(name="add", registry=reg)
    def add(a, b):
        return a + b

    return add


def test_enqueue_stores_a_queued_job(client: TaskQueue, add) -> None:
    job_id = client.enqueue(add, 1, 2)
    st = client.status(job_id)
    assert (st.state, st.task, st.queue, st.attempts) == ("queued", "add", "default", 0)
    assert client.queue_lengths()["default"]["queued"] == 1


def test_enqueue_by_registered_name(client: TaskQueue, add) -> None:
    assert client.status(client.enqueue("add", 1, 2)).task == "add"


def test_unknown_task_name_is_refused_with_the_name(client: TaskQueue, add) -> None:
    with pytest.raises(UnknownTask, match=r"unknown task 'nosuch'.*strict=False"):
        client.enqueue("nosuch", 1)
    assert client.queue_lengths() == {}


def test_unknown_task_allowed_with_strict_false(client: TaskQueue) -> None:
    job_id = client.enqueue_with("remote.only", (1,), strict=False, queue="other")
    assert client.status(job_id).queue == "other"


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "semi;colon", "ünï"])
def test_invalid_queue_names_are_refused(client: TaskQueue, add, bad: str) -> None:
    with pytest.raises(InvalidQueueName, match="invalid queue name"):
        client.enqueue_with(add, (1, 2), queue=bad)


def test_oversize_payload_is_refused_naming_task_and_limit(redis_url, reg, add) -> None:
    small = TaskQueue(redis_url, registry=reg, max_payload=1000)
    with pytest.raises(PayloadTooLarge, match=r"task 'add' is \d+ bytes, over the limit of 1000"):
        small.enqueue(add, "x" * 2000, 1)
    assert small.queue_lengths() == {}


def test_unserializable_argument_is_named(client: TaskQueue, add) -> None:
    with pytest.raises(SerializationError, match=r"argument 1 \(object\) of task 'add'"):
        client.enqueue(add, 1, object())
    with pytest.raises(SerializationError, match=r"keyword argument 'b' \(set\)"):
        client.enqueue(add, a=1, b={1, 2})


def test_idempotency_key_returns_the_first_job_and_writes_nothing(client: TaskQueue, add) -> None:
    first = client.enqueue_with(add, (1, 2), key="order-7")
    second = client.enqueue_with(add, (5, 5), key="order-7")
    assert first == second
    assert client.queue_lengths()["default"]["queued"] == 1


def test_idempotency_key_dedupes_across_threads(client: TaskQueue, add) -> None:
    ids: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait()
        for _ in range(20):
            job_id = client.enqueue_with(add, (1, 2), key="same")
            with lock:
                ids.append(job_id)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1
    assert client.queue_lengths()["default"]["queued"] == 1


def test_delay_and_at_schedule_the_job(client: TaskQueue, add) -> None:
    a = client.enqueue_with(add, (1, 2), delay=30)
    b = client.enqueue_with(add, (1, 2), delay=timedelta(minutes=5))
    c = client.enqueue_with(add, (1, 2), at=datetime.now() + timedelta(hours=1))
    assert {client.status(j).state for j in (a, b, c)} == {"scheduled"}
    assert client.queue_lengths()["default"]["scheduled"] == 3


def test_at_in_the_past_queues_immediately(client: TaskQueue, add) -> None:
    job_id = client.enqueue_with(add, (1, 2), at=datetime.now() - timedelta(minutes=1))
    assert client.status(job_id).state == "queued"


def test_enqueue_many_batches_and_keeps_order(client: TaskQueue, add) -> None:
    ids = client.enqueue_many([(add, (i, i), {}) for i in range(2500)] + [(add, (1, 1))])
    assert len(ids) == len(set(ids)) == 2501
    first = client.redis.lrange(client.keys.ready("default"), 0, 2)
    assert [x.decode() for x in first] == ids[:3]


def test_enqueue_many_rejects_the_whole_batch_on_a_bad_call(client: TaskQueue, add) -> None:
    with pytest.raises(SerializationError):
        client.enqueue_many([(add, (1, 1)), ("add", (1, object())), (add, (1, 1))])
    with pytest.raises(UnknownTask):
        client.enqueue_many([(add, (1, 1)), ("zzz", (1,))])
    assert client.queue_lengths() == {}
