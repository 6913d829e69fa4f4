"""tqctl: control and inspect taskqueue through Redis, from any host.

Exit codes: 0 ok, 1 failed, 2 usage, 3 no such master running, 4 timed out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import redis

from .. import __version__
from ..client import TaskQueue
from ..config import TaskQueueConfig
from ..connection import RedisSettings
from ..control import ControlClient, NoSuchMaster, ReplyTimeout
from ..control.overview import dead_count, queue_overview
from ..errors import ConfigError, EnqueueError, JobNotFound, TaskQueueError
from ..redact import redact_text, redact_url
from ..schedules.admin import NoSuchSchedule, ScheduleAdmin, list_schedules
from . import autoscaler_cmd, schema_cmd
from .render import Progress, duration, fmt, mib, table

OK, FAILED, USAGE, NO_MASTER, TIMED_OUT = 0, 1, 2, 3, 4


class Fail(Exception):
    """A command failed: print the message (one line + what to do next) and exit with code."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


# -- the parser -------------------------------------------------------------------------------
def _sub(subs: Any, name: str, help: str, example: str) -> argparse.ArgumentParser:
    return subs.add_parser(
        name, help=help, description=help, epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip


def _targets(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--master", "-m", metavar="ID", help="the master to address (see tqctl status)")
    g.add_argument("--all", action="store_true", help="address every running master")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each reply")


def _dead_list_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, default=20, help="how many of the newest dead jobs")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tqctl",
        description="Control and inspect taskqueue supervisors, queues and jobs through Redis.",
        epilog="exit codes: 0 ok, 1 failed, 2 usage, 3 no such master running, 4 timed out\n"
        "example:\n  tqctl -r redis://127.0.0.1:6379 status",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--redis-url", "-r", help="Redis URL (default: $REDIS_URL, then the config)")
    p.add_argument("--config", "-c", metavar="FILE", help="TOML/YAML config file")
    p.add_argument("--version", action="version", version=f"tqctl {__version__}")
    subs = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = _sub(subs, "status", "masters, workers and queues at a glance", "tqctl status --json")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s = _sub(
        subs,
        "top",
        "a live view of masters, workers and queues (Ctrl-C to leave)",
        "tqctl top --interval 2",
    )
    s.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    s.add_argument("--iterations", type=int, default=0, help=argparse.SUPPRESS)
    s = _sub(subs, "scale", "set the worker count: N, +N or -N", "tqctl scale +2 --all")
    s.add_argument("count", help="N (absolute), +N or -N (relative)")
    _targets(s)
    s = _sub(
        subs,
        "drain",
        "stop fetching, finish in-flight jobs, then exit",
        "tqctl drain --all --wait --timeout 120",
    )
    s.add_argument(
        "--wait", action="store_true", help="wait (with a progress bar) until the masters exited"
    )
    _targets(s)
    for name, help, ex in (
        ("quiet", "stop fetching new jobs, keep running (like SIGTSTP)", "tqctl quiet --master web1:4242"),
        ("resume", "fetch again after quiet (like SIGCONT)", "tqctl resume --all"),
        ("reload", "rolling reload of the workers (like SIGHUP)", "tqctl reload"),
        ("dump", "log the stacks of the master and its workers (like SIGUSR2)", "tqctl dump"),
        ("ping", "check that masters answer", "tqctl ping --all"),
    ):  # fmt: skip
        _targets(_sub(subs, name, help, ex))
    s = _sub(
        subs,
        "stop",
        "stop masters gracefully (like SIGTERM), or --fast (like SIGQUIT)",
        "tqctl stop --all",
    )
    s.add_argument("--fast", action="store_true", help="release in-flight jobs and stop now")
    _targets(s)

    autoscaler_cmd.add_parser(subs, _sub, _targets)
    schema_cmd.add_parser(subs, _sub)

    s = _sub(
        subs, "queues", "list queues with lengths and last-minute rates", "tqctl queues --json"
    )
    s.add_argument("--json", action="store_true")
    q = _sub(
        subs,
        "queue",
        "pause, resume or purge a queue (for every master at once)",
        "tqctl queue pause low_priority",
    )
    qs = q.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name in ("pause", "resume"):
        _sub(qs, name, f"{name} a queue", f"tqctl queue {name} low_priority").add_argument("queue")
    s = _sub(
        qs, "purge", "cancel every waiting job of a queue", "tqctl queue purge low_priority --yes"
    )
    s.add_argument("queue")
    s.add_argument("--yes", action="store_true", help="confirm: this cancels jobs")

    c = _sub(
        subs,
        "config",
        "check a config file, or show the effective settings",
        "tqctl config check conf/task-queue.toml",
    )
    cs = c.add_subparsers(dest="action", metavar="ACTION", required=True)
    _sub(
        cs,
        "check",
        "validate a config file (before a reload)",
        "tqctl config check conf/production-task-queue.toml",
    ).add_argument("file")
    s = _sub(
        cs,
        "show",
        "the effective settings, credentials redacted",
        "tqctl -c conf/task-queue.toml config show",
    )
    s.add_argument("--json", action="store_true")

    s = _sub(
        subs,
        "job",
        "state, attempts, errors, timings and result of a job",
        "tqctl job 3f2a... --json",
    )
    s.add_argument("id")
    s.add_argument("--json", action="store_true")
    _sub(subs, "cancel", "cancel a job that has not finished", "tqctl cancel 3f2a...").add_argument(
        "id"
    )

    d = _sub(
        subs, "dead", "list the dead letter (`dead` or `dead list`), or retry / delete from it",
        "tqctl dead list --limit 20",
    )  # fmt: skip
    _dead_list_flags(d)
    ds = d.add_subparsers(dest="action", metavar="ACTION")
    _dead_list_flags(_sub(ds, "list", "list the newest dead jobs (the same as plain `dead`)",
                          "tqctl dead list --json"))  # fmt: skip
    for name, ex, what in (
        ("retry", "tqctl dead retry --all", "put it back in its queue with fresh retries"),
        ("delete", "tqctl dead delete --all --yes", "remove it for good"),
    ):
        s = _sub(ds, name, f"{name} one dead job or all: {what}", ex)
        s.add_argument("id", nargs="?", help="the job id (see `tqctl dead list`)")
        s.add_argument("--all", action="store_true", help=f"{name} every dead job")
        if name == "delete":
            s.add_argument("--yes", action="store_true", help="confirm deleting with --all")

    sc = _sub(subs, "schedules",
              "list periodic schedules (next and last firing, last job's outcome), or pause, "
              "resume or run one now", "tqctl schedules --json")  # fmt: skip
    sc.add_argument("--json", action="store_true", help="machine-readable output")
    scs = sc.add_subparsers(dest="action", metavar="ACTION")
    for name, help in (
        ("pause", "stop a schedule from firing (on every master)"),
        ("resume", "fire a paused schedule again, from its next slot"),
        ("run-now", "enqueue one job of a schedule now; its slots do not move"),
    ):  # fmt: skip
        _sub(scs, name, help, f"tqctl schedules {name} reports.nightly").add_argument("name")

    s = _sub(
        subs,
        "enqueue",
        "enqueue a job by task name",
        "tqctl enqueue demo.add --args '[1, 2]' --queue high_priority",
    )
    s.add_argument("name")
    s.add_argument("--args", default="[]", help="JSON list of positional arguments")
    s.add_argument("--kwargs", default="{}", help="JSON object of keyword arguments")
    s.add_argument(
        "--queue", help="queue name (default: 'default'; tqctl does not import task code)"
    )
    s.add_argument("--delay", type=float, help="seconds before it may run")
    s.add_argument("--key", help="idempotency key")
    return p


# -- commands ---------------------------------------------------------------------------------
class Ctl:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        cli = {"redis.url": args.redis_url} if args.redis_url else None
        self.cfg = TaskQueueConfig.load(args.config, cli=cli)
        self.url = self.cfg.redis.url
        self.tq = TaskQueue(
            RedisSettings.from_config(self.cfg),
            prefix=self.cfg.redis.key_prefix,
            namespace=self.cfg.redis.namespace,
        )
        self.ctl = ControlClient(self.tq.redis, self.tq.keys)

    def out(self, data: Any) -> None:
        print(json.dumps(data, indent=2, default=str))

    # status / top
    def snapshot(self) -> dict[str, Any]:
        return {
            "masters": self.ctl.masters(),
            "queues": queue_overview(self.tq.redis, self.tq.keys),
            "dead": dead_count(self.tq.redis, self.tq.keys),
        }

    def status(self) -> int:
        snap = self.snapshot()
        if self.args.json:
            others = self.ctl.other_namespaces()
            snap["other_namespaces"] = [{"prefix": p, "namespace": ns, "masters": n}
                                        for p, ns, n in others]  # fmt: skip
            self.out(snap)
        else:
            print(self.render(snap))
            self.other_namespaces(bool(snap["masters"]))
        return OK

    def other_namespaces(self, here: bool) -> None:
        """Say where masters run when it is not (only) here: the usual cause of "no master"."""
        others = self.ctl.other_namespaces()
        if not others:
            return
        names = ", ".join(f"{ns!r} ({n} master{'s' if n > 1 else ''}"
                          f"{'' if p == self.tq.keys.prefix else f', key prefix {p!r}'})"
                          for p, ns, n in others)  # fmt: skip
        ns = others[0][1]
        print(f"\nnote: {'' if here else 'no master runs in namespace '}"
              f"{'' if here else repr(self.tq.keys.namespace) + '; '}masters also run in "
              f"namespace {names} of this Redis. To look there, pass -c with that config file "
              f"or set TASKQUEUE_REDIS__NAMESPACE={ns}.")  # fmt: skip

    def render(self, snap: dict[str, Any]) -> str:
        parts = [f"redis {redact_url(self.url)}  namespace {self.tq.keys.base}"]
        masters = snap["masters"]
        rows = [{
            "id": m["id"], "workers": f"{m['actual']}/{m['desired']}",
            "state": "draining" if m.get("draining") else "quiet" if m.get("quiet") else "running",
            "queues": ",".join(m.get("queues", [])), "up": duration(time.time() - m["started"]),
            "busy": sum(w["busy"] for w in m["workers"]), "done": sum(w["processed"] for w in m["workers"]),
        } for m in masters]  # fmt: skip
        parts.append("\nMASTERS\n" + (table(rows, [("id", "ID"), ("state", "STATE"), ("workers", "WORKERS"),
                     ("busy", "BUSY"), ("done", "DONE"), ("up", "UP"), ("queues", "QUEUES")])
                     if rows else "(none running)"))  # fmt: skip
        wrows = [{
            "master": m["id"], "index": w["index"], "pid": w["pid"], "state": w["state"],
            "slots": f"{w['busy']}/{w['slots']}", "rss": mib(w.get("rss")), "uss": mib(w.get("uss")),
            "cpu": w.get("cpu"), "done": w["processed"],
            "jobs": " ".join(f"{j['id'][:8]}({j['running_s']:.0f}s)" for j in w["jobs"][:3]),
        } for m in masters for w in m["workers"]]  # fmt: skip
        if wrows:
            parts.append("\nWORKERS\n" + table(wrows, [("master", "MASTER"), ("index", "#"), ("pid", "PID"),
                         ("state", "STATE"), ("slots", "BUSY"), ("rss", "RSS"), ("uss", "USS"),
                         ("cpu", "CPU%"), ("done", "DONE"), ("jobs", "JOBS")]))  # fmt: skip
        parts.append("\nQUEUES\n" + (table(snap["queues"], [("queue", "QUEUE"), ("queued", "QUEUED"),
                     ("scheduled", "SCHEDULED"), ("active", "ACTIVE"), ("paused", "PAUSED"),
                     ("succeeded_per_min", "OK/MIN"), ("failed_per_min", "FAILED/MIN")])
                     if snap["queues"] else "(no queues yet)"))  # fmt: skip
        parts.append(f"\ndead letter: {snap['dead']} job(s)")
        return "\n".join(parts)

    def top(self) -> int:
        n = 0
        try:
            while True:
                screen = self.render(self.snapshot())
                sys.stdout.write(
                    "\x1b[H\x1b[2J" + screen + "\n" if sys.stdout.isatty() else screen + "\n\n"
                )
                sys.stdout.flush()
                n += 1
                if self.args.iterations and n >= self.args.iterations:
                    return OK
                time.sleep(self.args.interval)
        except KeyboardInterrupt:
            return OK

    # master commands
    def command(self, cmd: str, args: dict[str, Any] | None = None) -> int:
        masters = self.ctl.targets(self.args.master, self.args.all)
        failed = 0
        for m in masters:
            reply = self.ctl.send(m, cmd, args, self.args.timeout)
            print(f"{m}: {'ok' if reply.ok else 'FAILED'}: {reply.message}")
            failed += not reply.ok
        return FAILED if failed else OK

    def scale(self) -> int:
        raw = self.args.count
        try:
            n = int(raw)
        except ValueError:
            raise Fail(f"scale: {raw!r} is not N, +N or -N", USAGE) from None
        return self.command("scale", {"delta": n} if raw[0] in "+-" else {"n": n})

    def drain(self) -> int:
        masters = self.ctl.targets(self.args.master, self.args.all)
        for m in masters:
            reply = self.ctl.send(m, "drain", None, self.args.timeout)
            print(f"{m}: {'ok' if reply.ok else 'FAILED'}: {reply.message}")
            if not reply.ok:
                return FAILED
        if not self.args.wait:
            return OK
        return self.wait_gone(masters)

    def wait_gone(self, masters: list[str]) -> int:
        deadline = time.monotonic() + (self.args.timeout if self.args.timeout > 5 else 3600)
        live = {m["id"]: m for m in self.ctl.masters() if m["id"] in masters}
        start = sum(w["busy"] for m in live.values() for w in m["workers"]) or 1
        bar = Progress("draining", start)
        while live:
            busy = sum(w["busy"] for m in live.values() for w in m["workers"])
            bar.update(start - min(busy, start), f"in flight: {busy}, masters left: {len(live)}")
            if time.monotonic() > deadline:
                bar.close()
                raise Fail(
                    f"still draining after {self.args.timeout:g}s: {', '.join(live)}", TIMED_OUT
                )
            time.sleep(0.2)
            live = {m["id"]: m for m in self.ctl.masters() if m["id"] in masters}
        bar.update(start, "done")
        bar.close()
        print("drained: every targeted master finished its jobs and exited")
        return OK

    # queues
    def queues(self) -> int:
        rows = queue_overview(self.tq.redis, self.tq.keys)
        if self.args.json:
            self.out(rows)
        else:
            print(table(rows, [("queue", "QUEUE"), ("queued", "QUEUED"), ("scheduled", "SCHEDULED"),
                               ("active", "ACTIVE"), ("paused", "PAUSED"), ("enqueued_per_min", "IN/MIN"),
                               ("succeeded_per_min", "OK/MIN"), ("failed_per_min", "FAILED/MIN")]))  # fmt: skip
        return OK

    def queue(self) -> int:
        a = self.args
        if a.action == "pause":
            self.tq.pause(a.queue)
            print(f"queue {a.queue} paused: workers on every host stop taking its jobs")
        elif a.action == "resume":
            self.tq.resume(a.queue)
            print(f"queue {a.queue} resumed")
        else:
            if not a.yes:
                raise Fail(
                    f"purge cancels every waiting job of {a.queue!r}; add --yes to confirm", USAGE
                )
            print(f"purged {self.tq.purge(a.queue)} job(s) from {a.queue}")
        return OK

    def config(self) -> int:
        if self.args.action == "check":
            TaskQueueConfig.from_file(self.args.file).validate()
            print(f"{self.args.file}: valid")
            return OK
        data = self.cfg.as_dict(redacted=True)
        if self.args.json:
            self.out(data)
        else:
            for section, values in data.items():
                tables = values if isinstance(values, list) else [values]
                for table in tables:  # a list is an array of tables: [[schedules]]
                    print(f"[[{section}]]" if isinstance(values, list) else f"[{section}]")
                    for k, v in table.items():
                        if v is not None or not isinstance(values, list):
                            print(f"{k} = {json.dumps(v, default=str)}")
                    print()
        return OK

    # jobs
    def job(self) -> int:
        st = self.tq.status(self.args.id)
        data = dict(vars(st))
        if st.state == "succeeded":
            data["result"] = self.tq.result(st.id, timeout=1)
        if self.args.json:
            self.out(data)
            return OK
        for k in ("id", "state", "task", "queue", "attempts", "failures", "stalls",
                  "enqueued_at", "started_at", "finished_at", "error", "result"):  # fmt: skip
            if data.get(k) not in (None, ""):
                print(f"{k:<12} {fmt(data[k])}")
        for h in st.history:
            print(f"  attempt {h.get('attempt')}: {h.get('error')}")
        return OK

    def cancel(self) -> int:
        if self.tq.cancel(self.args.id):
            print(f"job {self.args.id}: cancelled (a running job stops at its next lease check)")
            return OK
        raise Fail(
            f"job {self.args.id} is unknown or already finished; see `tqctl job {self.args.id}`"
        )

    def dead(self) -> int:
        a = self.args
        if a.action in (None, "list"):
            jobs = self.tq.dead_letter(a.limit)
            if a.json:
                self.out([vars(j) for j in jobs])
            else:
                print(table([vars(j) for j in jobs], [("id", "ID"), ("task", "TASK"), ("queue", "QUEUE"),
                            ("failures", "FAILURES"), ("finished_at", "DIED"), ("error", "ERROR")])
                      if jobs else "dead letter is empty")  # fmt: skip
            return OK
        if not a.id and not a.all:
            raise Fail(f"dead {a.action}: give a job ID or --all", USAGE)
        if a.action == "delete" and a.all and not getattr(a, "yes", False):
            raise Fail("dead delete --all removes every dead job for good; add --yes", USAGE)
        target = "all" if a.all else a.id
        n = self.tq.retry_dead(target) if a.action == "retry" else self.tq.delete_dead(target)
        print(f"{'retried' if a.action == 'retry' else 'deleted'} {n} dead job(s)")
        return OK if n or a.all else FAILED

    def schedules(self) -> int:
        a = self.args
        admin = ScheduleAdmin(self.tq.redis, self.tq.keys)
        if a.action is None:
            rows = list_schedules(self.tq.redis, self.tq.keys)
            if a.json:
                self.out(rows)
            elif not rows:
                print("no schedules: declare them with @periodic or [[schedules]] and start a "
                      "master with --enable-scheduler")  # fmt: skip
            else:
                print(table([_schedule_row(r) for r in rows], SCHEDULE_COLUMNS))
            return OK
        if a.action == "pause":
            done = admin.pause(a.name)
            print(f"schedule {a.name} {'paused' if done else 'was already paused'}")
        elif a.action == "resume":
            done = admin.resume(a.name)
            print(f"schedule {a.name} {'resumed' if done else 'was not paused'}")
        else:
            print(f"schedule {a.name}: job {admin.run_now(a.name)} enqueued")
        return OK

    def enqueue(self) -> int:
        a = self.args
        try:
            args, kwargs = json.loads(a.args), json.loads(a.kwargs)
        except ValueError as exc:
            raise Fail(f"--args/--kwargs must be JSON: {exc}", USAGE) from None
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise Fail("--args must be a JSON list and --kwargs a JSON object", USAGE)
        job_id = self.tq.enqueue_with(a.name, args, kwargs, queue=a.queue, delay=a.delay,
                                      key=a.key, strict=False)  # fmt: skip
        print(job_id)
        return OK


SCHEDULE_COLUMNS = [("name", "NAME"), ("task", "TASK"), ("queue", "QUEUE"), ("when", "WHEN"),
                    ("state", "STATE"), ("next", "NEXT"), ("last", "LAST"),
                    ("last_outcome", "OUTCOME"), ("misfire", "MISFIRE")]  # fmt: skip


def _at(ms: int | None, tz: str | None) -> datetime | None:
    """A time in the schedule's own timezone (cron), else this host's; the offset is shown."""
    if not ms:
        return None
    utc = datetime.fromtimestamp(ms / 1000, timezone.utc)
    return utc.astimezone(ZoneInfo(tz) if tz else None)


def _schedule_row(r: dict[str, Any]) -> dict[str, Any]:
    nxt = _at(r["next_ms"], r.get("tz"))
    return {**r, "state": "paused" if r["paused"] else "active",
            "next": f"{fmt(nxt)} (in {duration(max(0.0, r['next_in_s']))})" if nxt else None,
            "last": _at(r["last_fired_ms"], r.get("tz"))}  # fmt: skip


COMMANDS = {
    "status": Ctl.status, "top": Ctl.top, "scale": Ctl.scale, "drain": Ctl.drain,
    "quiet": lambda c: c.command("quiet"), "resume": lambda c: c.command("resume"),
    "reload": lambda c: c.command("reload"), "dump": lambda c: c.command("dump"),
    "ping": lambda c: c.command("ping"),
    "stop": lambda c: c.command("stop", {"fast": c.args.fast}),
    "queues": Ctl.queues, "queue": Ctl.queue, "config": Ctl.config, "job": Ctl.job,
    "cancel": Ctl.cancel, "dead": Ctl.dead, "enqueue": Ctl.enqueue, "autoscaler": autoscaler_cmd.run,
    "schedules": Ctl.schedules, "schema": schema_cmd.run,
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](Ctl(args))
    except Fail as exc:
        print(f"tqctl: {exc}", file=sys.stderr)
        return exc.code
    except NoSuchMaster as exc:
        print(f"tqctl: {exc}", file=sys.stderr)
        return NO_MASTER
    except ReplyTimeout as exc:
        print(f"tqctl: {exc}", file=sys.stderr)
        return TIMED_OUT
    except (ConfigError, EnqueueError) as exc:
        print(f"tqctl: {exc}", file=sys.stderr)
        return USAGE
    except NoSuchSchedule as exc:
        print(f"tqctl: {exc}", file=sys.stderr)
        return FAILED
    except JobNotFound as exc:
        print(f"tqctl: {exc}; check the id (`tqctl dead`, `tqctl queues`)", file=sys.stderr)
        return FAILED
    except redis.RedisError as exc:
        print(f"tqctl: cannot talk to Redis ({redact_text(str(exc))}); check --redis-url / "
              "REDIS_URL and that Redis is up", file=sys.stderr)  # fmt: skip
        return FAILED
    except TaskQueueError as exc:
        print(f"tqctl: {exc}", file=sys.stderr)
        return FAILED


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
