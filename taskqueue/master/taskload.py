"""Loading the task code a supervisor's workers run, once, in the master before any fork.

Duties:
1. Import the modules of ``workers.imports`` (the working directory is importable).
2. Register each ``workers.tasks`` entry (``module:function``): a ``@task`` function or a
   ``Task`` subclass as declared, a plain function under the name ``module.function``.
3. With ``auto_register.enabled = false``, keep only those listed tasks in the registry.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from ..errors import ConfigError
from ..registry import Registry, registry
from ..task import Task, TaskFunction, task


def load_tasks(cfg: Any, reg: Registry = registry) -> list[str]:
    """Import and register the configured task code; return the registered task names."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in cfg.workers.imports:
        importlib.import_module(name.split(":")[0])
    listed = [_register(path, reg) for path in cfg.workers.tasks]
    if not cfg.auto_register.enabled:
        for name in reg.names():
            if name not in listed:
                reg.remove(name)
    return reg.names()


def _register(path: str, reg: Registry) -> str:
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part, None)
    if isinstance(obj, TaskFunction) or (isinstance(obj, type) and issubclass(obj, Task)):
        reg.add(obj.spec)
        return obj.spec.name
    if callable(obj) and not isinstance(obj, type):
        return task(obj, registry=reg).name
    raise ConfigError(
        f"workers.tasks: {path!r} is not a function or a Task subclass "
        f"(found {type(obj).__name__}); write module:function"
    )
