"""The task API: the ``@task`` decorator and the ``Task`` base class.

    @task(name="add", queue=queue_names.DEFAULT, max_retries=3, timeout=10)
    def add(a, b):
        return a + b

    class SendEmail(Task):
        name = "send_email"
        def run(self, to, subject): ...

Both register in ``taskqueue.registry.registry`` when their module is imported; a worker imports
the modules named by ``--import`` and finds them there. Sync and ``async def`` code both work.

    taskqueue.set_default(TaskQueue(...))     # or TaskQueue.from_config(), which sets it
    add.delay(2, 3)                           # -> job id, as add.enqueue_with((2, 3), delay=10)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar

from .errors import InvalidOption, NoDefaultClient
from .registry import Registry, TaskOptions, TaskSpec, is_async_callable, registry

_OPTION_NAMES = set(TaskOptions.__dataclass_fields__)
_default: Any = None


def set_default(client: Any) -> None:
    """Make ``client`` (a ``TaskQueue`` or ``AsyncTaskQueue``) the one ``task.delay()`` and
    ``task.enqueue_with()`` use; ``TaskQueue.from_config()`` calls it. ``None`` clears it."""
    global _default
    _default = client


def default_client() -> Any:
    """The client ``set_default`` set; raise ``NoDefaultClient`` saying how to set one."""
    if _default is None:
        raise NoDefaultClient(
            "no default client to enqueue through: call taskqueue.set_default(TaskQueue(url)) "
            "or TaskQueue.from_config() once at start-up, or use tq.enqueue(task, ...)"
        )
    return _default


def _options(name: str, options: dict[str, Any]) -> TaskOptions:
    try:
        return TaskOptions(**options)
    except InvalidOption as exc:
        raise InvalidOption(f"task {name!r}: {exc}") from None


def _origin(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


class TaskFunction:
    """A function registered as a task. Calling it runs the function here, like a plain call;
    ``delay(...)`` enqueues it through the default client."""

    def __init__(self, func: Callable[..., Any], spec: TaskSpec) -> None:
        functools.update_wrapper(self, func)
        self.func = func
        self.spec = spec
        self.name = spec.name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        """Enqueue ``self(*args, **kwargs)`` on the default client (see ``set_default``); returns
        the job id (an awaitable of it when the default is an ``AsyncTaskQueue``)."""
        return default_client().enqueue(self, *args, **kwargs)

    def enqueue_with(
        self, args: tuple | list = (), kwargs: dict | None = None, **options: Any
    ) -> Any:
        """Enqueue with options (queue, delay, at, key, max_retries, timeout, expires) on the
        default client."""
        return default_client().enqueue_with(self, args, kwargs, **options)

    def __repr__(self) -> str:
        return f"<task {self.name!r} ({self.spec.origin})>"


def task(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    registry: Registry = registry,
    **options: Any,
) -> Any:
    """Register a function as a task. Usable bare (``@task``) or with options (``@task(...)``).

    Options: queue, max_retries, timeout, dead_letter, result_ttl, retry_backoff,
    retry_backoff_max (see ``TaskOptions``). The default name is ``module.function``.
    """
    unknown = set(options) - _OPTION_NAMES
    if unknown:
        raise TypeError(f"unknown task option(s) {sorted(unknown)}; known: {sorted(_OPTION_NAMES)}")

    def wrap(f: Callable[..., Any]) -> TaskFunction:
        spec = TaskSpec(
            name=name or _origin(f),
            func=f,
            is_async=is_async_callable(f),
            options=_options(name or _origin(f), options),
            origin=_origin(f),
        )
        registry.add(spec)
        return TaskFunction(f, spec)

    return wrap(func) if func is not None else wrap


class Task:
    """Base class of class-based tasks: subclasses register themselves when defined.

    Set ``name`` (default ``module.ClassName``) and any option of ``TaskOptions`` as class
    attributes, and implement ``run`` (sync or async). Each job gets a fresh instance.
    Set ``abstract = True`` on an intermediate base class to keep it out of the registry.
    """

    name: ClassVar[str | None] = None
    abstract: ClassVar[bool] = True
    spec: ClassVar[TaskSpec]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("abstract", False):
            return
        cls.abstract = False
        if "name" not in cls.__dict__ or cls.__dict__["name"] is None:
            cls.name = _origin(cls)
        options = {k: getattr(cls, k) for k in _OPTION_NAMES if hasattr(cls, k)}
        is_async = is_async_callable(cls.run)

        if is_async:

            async def call(*args: Any, **kw: Any) -> Any:
                return await cls().run(*args, **kw)
        else:

            def call(*args: Any, **kw: Any) -> Any:
                return cls().run(*args, **kw)

        cls.spec = TaskSpec(cls.name, call, is_async, _options(cls.name, options), _origin(cls))
        registry.add(cls.spec)

    def run(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError(f"{type(self).__name__}.run is not implemented")

    @classmethod
    def delay(cls, *args: Any, **kwargs: Any) -> Any:
        """Enqueue this task on the default client (see ``set_default``); returns the job id."""
        return default_client().enqueue(cls, *args, **kwargs)

    @classmethod
    def enqueue_with(
        cls, args: tuple | list = (), kwargs: dict | None = None, **options: Any
    ) -> Any:
        """Enqueue with options through the default client."""
        return default_client().enqueue_with(cls, args, kwargs, **options)


def resolve(target: Any, reg: Registry = registry) -> tuple[str, TaskSpec | None]:
    """Turn a task reference (TaskFunction, Task subclass or name) into (name, spec or None)."""
    if isinstance(target, TaskFunction):
        return target.name, target.spec
    if isinstance(target, type) and issubclass(target, Task) and not target.abstract:
        return target.name or "", target.spec
    if isinstance(target, str):
        return target, reg.get(target)
    raise TypeError(
        f"cannot enqueue {target!r}: pass a @task function, a Task subclass or a task name"
    )
