"""``task-worker``: run the pre-fork master and its worker processes.

Duties:
1. Parse ``task-worker worker [flags]`` (every setting flag from the schema, plus ``--config``,
   ``--pidfile`` and ``--burst``) and build the configuration with its precedence
   (CLI > environment > file > default).
2. Report usage and configuration errors clearly, with exit status 2.
3. Configure logging, import the task modules once (before any fork), write the pidfile, run
   the master, remove the pidfile.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
from collections.abc import Sequence

from .. import __version__
from ..config import TaskQueueConfig, add_cli_flags
from ..connection import RedisSettings
from ..errors import ConfigError
from ..redact import redact_text
from ..redis_errors import preflight

USAGE_ERROR = 2
EXAMPLE = """\
example:
  task-worker worker -r redis://127.0.0.1:6379 -w 4 -q high_priority,default -i myapp.tasks

signals of the master:
  TERM graceful stop; INT the same (twice: fast); QUIT fast stop; HUP rolling reload;
  TTIN/TTOU one worker more/less (with --enable-autoscaler this pins the count until
  `tqctl autoscaler unpin`); TSTP quiet (stop fetching), CONT resume;
  USR1 reopen log files; USR2 dump stacks of the master and the workers.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="task-worker", description="Run taskqueue worker processes under a pre-fork master.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"task-worker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    worker = sub.add_parser(
        "worker", help="run a master and its worker processes", epilog=EXAMPLE,
        description="Run a master that forks, supervises and recycles worker processes.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    worker.add_argument("--config", "-c", metavar="FILE",
                        help="TOML or YAML settings file [env TASKQUEUE_CONFIG]")  # fmt: skip
    worker.add_argument("--pidfile", metavar="FILE", help="write the master's pid to FILE")
    worker.add_argument("--burst", action="store_true",
                        help="exit once the queues are empty")  # fmt: skip
    worker.add_argument("--http", metavar="[ADDR:]PORT",
                        help="also serve the HTTP API from a supervised child process "
                             "(sets [web] enabled, bind and port)")  # fmt: skip
    add_cli_flags(worker)
    web = sub.add_parser(
        "web", help="serve the HTTP API and the dashboard (no workers)", epilog=WEB_EXAMPLE,
        description="Serve the HTTP API, the dashboard (at / and <route_prefix>/) and Prometheus "
                    "metrics of a namespace with uvicorn; this process runs no workers (web-only "
                    "mode). Needs the 'web' extra.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    web.add_argument("--config", "-c", metavar="FILE",
                     help="TOML or YAML settings file [env TASKQUEUE_CONFIG]")  # fmt: skip
    add_cli_flags(web, sections=("redis", "web", "logging"))
    return parser


WEB_EXAMPLE = """\
example:
  task-worker web -c conf/task-queue-web.toml --port 3000
  curl -s http://127.0.0.1:3000/tasks/health | jq .status
  # the dashboard: http://127.0.0.1:3000/
"""


def http_flag(args: argparse.Namespace) -> None:
    """``--http [ADDR:]PORT`` -> the [web] settings it stands for (flags beat the file)."""
    spec = getattr(args, "http", None)
    if not spec:
        return
    addr, _, port = spec.rpartition(":")
    args.web__enabled = True
    args.web__port = port
    if addr:
        args.web__bind = addr.strip("[]")


def load_config(args: argparse.Namespace) -> TaskQueueConfig:
    http_flag(args)
    return TaskQueueConfig.load(args.config, cli=args)


def web_main(cfg: TaskQueueConfig) -> int:
    from ..logs import configure_logging_from_config

    configure_logging_from_config(cfg)
    try:
        from ..web.server import serve
    except ImportError as exc:
        print(f"task-worker web: needs the 'web' extra: pip install 'taskqueue[web]' ({exc})",
              file=sys.stderr)  # fmt: skip
        return USAGE_ERROR
    return serve(cfg)


def no_workers(cfg: TaskQueueConfig) -> str | None:
    """Why ``task-worker worker`` cannot run this configuration, or None."""
    if cfg.workers.initial_count == 0 and not cfg.autoscaler.enabled:
        return ("workers.initial_count = 0 and the autoscaler is off: this file runs no workers "
                "and is meant for `task-worker web` (web-only mode); give -w N or turn on "
                "[autoscaler] enabled to start at autoscaler.min_workers")  # fmt: skip
    if cfg.web.enabled:
        try:
            from ..web.server import check
        except ImportError as exc:
            return f"--http / [web] enabled needs the 'web' extra: pip install 'taskqueue[web]' ({exc})"
        return check(cfg)
    return None


def schema_refusal(cfg: TaskQueueConfig, log: logging.Logger) -> str | None:
    """Agree on the namespace's schema version (``taskqueue.schema``) before any worker starts;
    the line to print when this release may not work the namespace. An unreachable Redis is
    waited for (signals still stop the process: its handlers are not installed yet)."""
    from redis.exceptions import RedisError

    from ..client import TaskQueue
    from ..errors import RedisUnavailable
    from ..redis_errors import OUTAGE, classify
    from ..schema import refusal_for

    tq = TaskQueue(RedisSettings.from_config(cfg), prefix=cfg.redis.key_prefix,
                   namespace=cfg.redis.namespace)  # fmt: skip
    delay, told = 0.2, False
    try:
        while True:
            try:
                return refusal_for(tq)
            except (RedisUnavailable, RedisError) as exc:
                # A full Redis (OOM), LOADING, a lost connection: wait; anything else is raised.
                if not isinstance(exc, RedisUnavailable) and classify(exc) != OUTAGE:
                    raise
                if not told:
                    log.warning("waiting for Redis to check the namespace's schema: %s", exc)
                    told = True
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
    finally:
        tq.close()


def hide_credentials(argv: Sequence[str]) -> bool:
    """If a command-line argument carries a password (``-r redis://:pw@host``), retitle the
    process at once with it redacted, shortening the time ``ps`` shows it. Returns whether one
    did: the caller warns (only ``--redis-url-file`` or the environment avoid it entirely)."""
    if not any("://" in a and "@" in a for a in argv):
        return False
    try:
        from setproctitle import setproctitle
    except ImportError:  # pragma: no cover - a dependency; nothing to shorten without it
        return True
    setproctitle(" ".join(redact_text(a) for a in [os.path.basename(sys.argv[0]), *argv]))
    return True


def main(argv: Sequence[str] | None = None) -> int:
    password_in_argv = hide_credentials(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # plain `task-worker`: say what it can do
        parser.print_help()
        return 0
    try:
        cfg = load_config(args)
    except ConfigError as exc:
        print(f"task-worker: configuration error:\n{exc}", file=sys.stderr)
        return USAGE_ERROR
    if args.command == "web":
        return web_main(cfg)
    why = no_workers(cfg)
    if why:
        print(f"task-worker: {why}", file=sys.stderr)
        return USAGE_ERROR
    from ..logs import configure_logging_from_config
    from ..master import Arbiter, load_tasks, pidfile
    from ..master.periodic import schedule_records

    configure_logging_from_config(cfg)
    log = logging.getLogger("taskqueue.master")
    if password_in_argv:
        log.warning("a password is on the command line, where ps shows it to every user of this "
                    "host: pass the URL with --redis-url-file FILE or TASKQUEUE_REDIS__URL")  # fmt: skip
    refused = preflight(RedisSettings.from_config(cfg)) or schema_refusal(cfg, log)
    if refused:
        print(f"task-worker: {refused}", file=sys.stderr)
        return USAGE_ERROR
    try:
        load_tasks(cfg)
    except Exception as exc:
        print(
            f"task-worker: cannot load the task code "
            f"{', '.join(cfg.workers.imports + cfg.workers.tasks)}: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        traceback.print_exc()
        return USAGE_ERROR
    try:
        schedule_records(cfg)
    except ConfigError as exc:
        print(f"task-worker: configuration error:\n{exc}", file=sys.stderr)
        return USAGE_ERROR
    if args.pidfile:
        try:
            pidfile.write(args.pidfile)
        except (pidfile.PidfileError, OSError) as exc:
            print(f"task-worker: {exc}", file=sys.stderr)
            return 1
    try:
        master = Arbiter(cfg, lambda: load_config(args), burst=args.burst)
        return master.run()
    except Exception:
        log.exception("master crashed")
        return 1
    finally:
        if args.pidfile and os.getpid() == master_pid:
            pidfile.remove(args.pidfile)


master_pid = os.getpid()

if __name__ == "__main__":
    sys.exit(main())
