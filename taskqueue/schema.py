"""The namespace's data-format (schema) version: two releases whose Lua scripts or job records
are incompatible never work one namespace at the same time.

Each release declares ``SCHEMA_VERSION`` (raised whenever a script's KEYS/ARGV, a record's fields
or a key's type change) and ``MIN_COMPATIBLE``, the oldest schema whose processes it can run
beside, reading and writing the same jobs. ``task-worker worker`` runs ``schema_check.lua`` before
it forks a worker: the newest release that started records its version, and a process that is too
old for it, or for which the recorded data is too old, exits 2 with one line saying which
versions met and what to do, before touching a job. A rolling deploy of compatible releases
passes; an incompatible one is refused loudly instead of corrupting jobs. ``tqctl schema`` shows
the record.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import __version__
from .broker import Broker, Call

if TYPE_CHECKING:
    from .client import TaskQueue

#: Raise on any change to a script's interface, a record's fields or a key's type.
#: 2: cancel leaves a queued job's id in its ready list as a tombstone, counted in ``tombs``
#: (fetch, cancel and purge take that key; fetch takes ``skip_max``).
SCHEMA_VERSION = 2
#: The oldest schema version this release can share a namespace with. Schema 1 processes can run
#: beside schema 2 ones: a schema 1 fetch already skips cancelled records (so no tombstone runs),
#: and a schema 1 cancel still removes the id. What a schema 1 fetch or purge cannot do is lower
#: the tombstone count, so queue lengths may read low until a schema 2 fetch or purge empties
#: that queue (the count is then cleared).
MIN_COMPATIBLE = 1


@dataclass(frozen=True)
class SchemaCheck:
    ok: bool
    stored_version: int
    stored_min: int

    def refusal(self, namespace: str, version: int = SCHEMA_VERSION,
                min_compatible: int = MIN_COMPATIBLE) -> str | None:  # fmt: skip
        """None when compatible, else the line to print."""
        if self.ok:
            return None
        if version < self.stored_min:
            why = (f"it holds data of schema {self.stored_version}, which needs schema "
                   f"{self.stored_min} or newer; this release (taskqueue {__version__}) has schema "
                   f"{version}: upgrade this host, or drain the namespace and run "
                   "`tqctl schema reset` to roll back")  # fmt: skip
        else:
            why = (f"it holds data of schema {self.stored_version}, and this release (taskqueue "
                   f"{__version__}, schema {version}) needs schema {min_compatible} or newer: stop "
                   "and drain the older release first, then run `tqctl schema reset`")  # fmt: skip
        return f"namespace {namespace!r} refused: {why}"


def check_call(broker: Broker, version: int = SCHEMA_VERSION,
               min_compatible: int = MIN_COMPATIBLE) -> Call:  # fmt: skip
    """The ``schema_check`` script call for this release (or for the given versions); its
    result is a ``SchemaCheck``."""
    by = f"{socket.gethostname()}:{os.getpid()} taskqueue {__version__}"
    call = broker.schema_check(version, min_compatible, by)
    parse = call.parse
    return Call(call.script, call.keys, call.args, lambda raw: SchemaCheck(*parse(raw)))


def refusal_for(tq: TaskQueue) -> str | None:
    """Run the check for this release on ``tq``'s namespace: None, or the line to print."""
    result: SchemaCheck = tq.run(check_call(tq.broker))
    return result.refusal(tq.keys.namespace)
