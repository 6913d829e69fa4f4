"""Ready-made tasks that write every run to the ledger (see ``taskqueue.testing.ledger``).

Import this module in the workers of a fault test (``--import taskqueue.testing.ledger_tasks``)
and enqueue by name. Each returns ``{"run": ..., "value": ...}`` (the ledger's proof of which run
was acked). ``ledger.crash`` kills its own worker process: the poison task of the fault tests.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import time

from ..task import task
from .ledger import Ledger, recorded


@task(name="ledger.noop")
@recorded
def noop(i: int = 0) -> int:
    return i


@task(name="ledger.sleep")
@recorded
def sleep(seconds: float, i: int = 0) -> int:
    time.sleep(seconds)
    return i


@task(name="ledger.asleep")
@recorded
async def asleep(seconds: float, i: int = 0) -> int:
    await asyncio.sleep(seconds)
    return i


@task(name="ledger.crash", max_retries=0)
@recorded
def crash(how: str = "exit") -> None:
    """Kill the worker process running this job: ``exit`` (os._exit(1)), ``segv`` (a real
    segmentation fault) or ``kill`` (SIGKILL to itself). The death is recorded in the ledger as
    a fault of this process first: the other jobs it kills may run again."""
    ledger = Ledger.from_env()
    if ledger is not None:
        ledger.fault(f"poison task ({how})", pid=os.getpid())
    if how == "segv":
        ctypes.string_at(0)
    elif how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(1)
