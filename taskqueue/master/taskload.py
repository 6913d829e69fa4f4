"""Loading the task code a supervisor's workers run, once, in the master before any fork.

Duties:
1. Import the modules of ``workers.imports`` (the working directory is importable).
2. Register each ``workers.tasks`` entry (``module:function``): a ``@task`` function or a
   ``Task`` subclass as declared, a plain function under the name ``module.function``.
3. With ``auto_register.enabled = false``, keep only those listed tasks in the registry.
4. On a reload (HUP, ``tqctl reload``) import the modules again (``importlib.reload``), so the
   next generation of workers, forked from the master, runs the changed code.

Deploys: the master imports the task code and its workers are forked from it, so they share
the imported code copy-on-write (one copy in memory, however many workers). A reload re-imports
in the master the modules named by ``workers.imports`` and ``workers.tasks`` (and their
submodules already loaded), then forks new workers: changed and added tasks are picked up
with no extra memory per worker. Code those modules import from elsewhere (a shared helper
package) is not re-imported: restart the master (``systemctl restart``) to change it. A task
removed from a module stays registered in the master until a restart.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from ..errors import ConfigError
from ..registry import Registry, registry
from ..task import Task, TaskFunction, task


def load_tasks(cfg: Any, reg: Registry = registry, *, reload: bool = False) -> list[str]:
    """Import and register the configured task code; return the registered task names.
    ``reload``: import already imported modules again (a deploy)."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    importlib.invalidate_caches()  # modules added since the last import are found
    modules = [n.split(":")[0] for n in cfg.workers.imports]
    modules += [p.partition(":")[0] for p in cfg.workers.tasks]
    for name in modules:
        if reload:
            _reimport(name)
        else:
            importlib.import_module(name)
    listed = [_register(path, reg) for path in cfg.workers.tasks]
    if not cfg.auto_register.enabled:
        for name in reg.names():
            if name not in listed:
                reg.remove(name)
    return reg.names()


def _reimport(name: str) -> None:
    """Import ``name`` again, its already loaded submodules first, or for the first time."""
    if name not in sys.modules:
        importlib.import_module(name)
        return
    subs = sorted((m for m in sys.modules if m.startswith(name + ".")), key=len, reverse=True)
    for sub in [*subs, name]:
        module = sys.modules.get(sub)
        if module is not None and getattr(module, "__file__", None):
            importlib.reload(module)


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
