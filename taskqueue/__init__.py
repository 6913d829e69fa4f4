"""taskqueue: a Redis task queue for production services.

from taskqueue import TaskQueue, Task, task, periodic, queue_names, set_default
"""

from . import queue_names
from .client import AsyncTaskQueue, TaskQueue
from .errors import Reject, Retry, SoftTimeLimitExceeded, TaskFailed, TaskQueueError
from .schedules import periodic
from .task import Task, set_default, task

__version__ = "0.1.0"

__all__ = [
    "AsyncTaskQueue",
    "Reject",
    "Retry",
    "SoftTimeLimitExceeded",
    "Task",
    "TaskFailed",
    "TaskQueue",
    "TaskQueueError",
    "__version__",
    "periodic",
    "queue_names",
    "set_default",
    "task",
]
