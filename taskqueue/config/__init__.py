"""taskqueue configuration: one declaration per setting, loaded from file, environment and CLI.

>>> from taskqueue.config import TaskQueueConfig
>>> cfg = TaskQueueConfig.load("conf/task-queue.toml", cli=args)   # CLI > env > file > default
>>> cfg.workers.initial_count, cfg.get("redis.url"), cfg.source_of("redis.url")
"""

from __future__ import annotations

from taskqueue.config.model import Section, TaskQueueConfig
from taskqueue.config.schema import SETTINGS, Setting, add_cli_flags

__all__ = ["SETTINGS", "Section", "Setting", "TaskQueueConfig", "add_cli_flags"]
