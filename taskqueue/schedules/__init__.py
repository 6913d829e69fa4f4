"""Periodic jobs: cron expressions and intervals, fired exactly once per slot by any number of
masters running with ``--enable-scheduler``.

Modules: ``spec`` (next slot of a cron expression or an interval), ``plan`` (misfire policy, a
pure decision), ``model`` (a schedule's definition and its Redis record), ``decorator``
(``@periodic``), ``collect`` (code and config schedules checked against the registered tasks),
``calls`` (the script calls), ``admin`` (list, pause, resume, run-now: tqctl and the HTTP API).
The master's side is ``taskqueue/master/periodic.py``.
"""

from .decorator import periodic
from .model import Schedule, ScheduleRegistry, schedules
from .spec import Cron, Every, make_spec

__all__ = ["Cron", "Every", "Schedule", "ScheduleRegistry", "make_spec", "periodic", "schedules"]
