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
import traceback
from collections.abc import Sequence

from ..config import TaskQueueConfig, add_cli_flags
from ..errors import ConfigError

USAGE_ERROR = 2
EXAMPLE = """\
example:
  task-worker worker -r redis://127.0.0.1:6379 -w 4 -q high_priority,default -i myapp.tasks

signals of the master:
  TERM graceful stop; INT the same (twice: fast); QUIT fast stop; HUP rolling reload;
  TTIN/TTOU one worker more/less; TSTP quiet (stop fetching), CONT resume;
  USR1 reopen log files; USR2 dump stacks of the master and the workers.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="task-worker", description="Run taskqueue worker processes under a pre-fork master.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
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
    add_cli_flags(worker)
    return parser


def load_config(args: argparse.Namespace) -> TaskQueueConfig:
    return TaskQueueConfig.load(args.config, cli=args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args)
    except ConfigError as exc:
        print(f"task-worker: configuration error:\n{exc}", file=sys.stderr)
        return USAGE_ERROR
    from ..logs import configure_logging_from_config
    from ..master import Arbiter, import_tasks, pidfile

    configure_logging_from_config(cfg)
    log = logging.getLogger("taskqueue.master")
    try:
        import_tasks(cfg.workers.imports)
    except Exception as exc:
        print(
            f"task-worker: cannot import the task modules "
            f"{', '.join(cfg.workers.imports)}: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        traceback.print_exc()
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
