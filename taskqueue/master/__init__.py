"""The pre-fork master (``task-worker worker``): forks worker processes and supervises them.

Modules, one duty each: ``arbiter`` (the loop, signals, reconciling), ``spawn`` (fork, boot
back-off), ``child`` (the worker process side), ``channel`` (the pipe protocol), ``handle``
(the master's view of one worker), ``leases`` (extend, release, recover, promote),
``recycle`` (task/memory limits, hung workers, runaway sync tasks), ``reload`` (rolling HUP),
``signals`` (the signal table), ``control`` (status record and commands in Redis), ``redisguard`` (outage handling),
``taskload`` (importing and registering the task code), ``sdnotify`` (systemd), ``pidfile``, ``httpchild`` (the supervised HTTP API process).
"""

from .arbiter import Arbiter
from .spawn import WorkerSpec
from .taskload import load_tasks

__all__ = ["Arbiter", "WorkerSpec", "load_tasks"]
