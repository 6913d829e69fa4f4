"""``tqctl schema``: the namespace's data-format version (``taskqueue.schema``).

1. ``show`` (the default): the version recorded in Redis (who raised it, when) beside this
   release's version and the oldest it can share a namespace with; exit 1 when they cannot meet.
2. ``reset --yes``: delete the record, so that the next master to start records its own version:
   for a rollback, once the namespace has been drained of the newer release.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..schema import MIN_COMPATIBLE, SCHEMA_VERSION

if TYPE_CHECKING:
    from .tqctl import Ctl


def add_parser(subs: Any, sub: Any) -> None:
    p = sub(subs, "schema", "the namespace's schema version: show, or reset after a rollback",
            "tqctl schema")  # fmt: skip
    acts = p.add_subparsers(dest="action", metavar="ACTION")
    show = acts.add_parser("show", help="the recorded version against this release's (default)")
    for q in (p, show):
        q.add_argument("--json", action="store_true", help="machine-readable output")
    reset = acts.add_parser("reset", help="forget the recorded version (after draining)")
    reset.add_argument("--yes", action="store_true", help="confirm the reset")


def run(ctl: Ctl) -> int:
    tq = ctl.tq
    if getattr(ctl.args, "action", None) == "reset":
        if not ctl.args.yes:
            print("tqctl: schema reset forgets which release last ran here; drain the namespace "
                  "of the newer release first, then pass --yes")  # fmt: skip
            return 2
        tq.redis.delete(tq.keys.schema)
        print(f"schema record of namespace {tq.keys.namespace!r} deleted")
        return 0
    raw = {k.decode(): v.decode() for k, v in tq.redis.hgetall(tq.keys.schema).items()}
    stored_v = int(raw["version"]) if "version" in raw else None
    stored_m = int(raw.get("min_compatible", 0) or 0)
    compatible = stored_v is None or (stored_m <= SCHEMA_VERSION and stored_v >= MIN_COMPATIBLE)
    at = (datetime.fromtimestamp(int(raw["at_ms"]) / 1000, timezone.utc).isoformat()
          if "at_ms" in raw else None)  # fmt: skip
    data = {"namespace": tq.keys.namespace, "recorded": {**raw, "at": at} if raw else None,
            "this_release": {"version": SCHEMA_VERSION, "min_compatible": MIN_COMPATIBLE},
            "compatible": compatible}  # fmt: skip
    if ctl.args.json:
        ctl.out(data)
    else:
        rec = (f"schema {stored_v} (needs >= {stored_m}), by {raw.get('by')} at {at}"
               if raw else "none (the first master to start records its own)")  # fmt: skip
        print(f"namespace     {tq.keys.namespace}")
        print(f"recorded      {rec}")
        print(f"this release  schema {SCHEMA_VERSION} (can share with >= {MIN_COMPATIBLE})")
        print(f"compatible    {'yes' if compatible else 'NO: task-worker refuses to start'}")
    return 0 if compatible else 1
