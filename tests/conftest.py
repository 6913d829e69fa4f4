"""Shared fixtures. The Redis fixtures (redis_server, redis_url, tq, redis_factory) come from the
taskqueue.testing pytest plugin, which the package registers as an entry point."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest

from taskqueue import TaskQueue
from taskqueue.registry import Registry
from taskqueue.testing import wait_for  # noqa: F401 - re-exported for tests
from taskqueue.worker import Worker


@pytest.fixture
def reg() -> Registry:
    """A private task registry, so tests never clash on task names."""
    return Registry()


@pytest.fixture
def client(redis_url: str, reg: Registry) -> Iterator[TaskQueue]:
    c = TaskQueue(redis_url, registry=reg)
    yield c
    c.close()


@contextlib.contextmanager
def running_worker(client: TaskQueue, reg: Registry, **kwargs: object) -> Iterator[Worker]:
    """A Worker running in a background thread for the duration of the block."""
    kwargs.setdefault("queues", ["high_priority", "default", "low_priority"])
    worker = Worker(client, registry=reg, **kwargs)  # type: ignore[arg-type]
    errors: list[BaseException] = []

    def target() -> None:
        try:
            worker.run()
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=60)
        assert not thread.is_alive(), "worker did not stop"
        assert not errors, f"worker crashed: {errors[0]!r}"


@pytest.fixture
def worker_factory(client: TaskQueue, reg: Registry):
    return lambda **kw: running_worker(client, reg, **kw)


from browser_fixtures import browser  # noqa: E402, F401 - fixture for the dashboard tests
from master_fixtures import masters  # noqa: E402, F401 - fixture for tests/test_master_*.py
from web_fixtures import web  # noqa: E402, F401 - fixture for tests/test_web*.py
