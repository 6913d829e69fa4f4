"""A TCP proxy the test controls, between a worker host and Redis: latency, stalls, resets and
partitions on loopback, without touching the machine's firewall.

    with FaultProxy(redis_port) as proxy:
        masters(proxy.url, ...)            # the master and its workers reach Redis through it
        proxy.latency(0.05, 0.5)           # every chunk waits 50-500 ms, each direction
        proxy.partition()                  # nothing passes; connections hang, as on a real cut
        proxy.stall_replies()              # requests reach Redis, its replies wait in the proxy
        proxy.heal()                       # hung connections are reset, new ones pass again
        proxy.reset()                      # every live connection gets a TCP RST mid-stream

A partition blackholes traffic (no FIN, no RST: the client learns of it only through its own
timeouts), and new connections are accepted but hang too, like a host whose route is gone.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from types import TracebackType


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to ``target``; thread per direction, all daemon threads."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open = threading.Event()  # set: traffic flows; clear: partitioned
        self._open.set()
        self._replies = threading.Event()  # set: replies flow; clear: they wait (a stalled read)
        self._replies.set()
        self._lock = threading.Lock()
        self._conns: list[tuple[socket.socket, socket.socket]] = []
        self._delay = (0.0, 0.0)
        self._closed = False
        self.connections = 0
        self._rng = random.Random(0)
        threading.Thread(target=self._accept, name="fault-proxy", daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    # -- faults ---------------------------------------------------------------------------
    def latency(self, low: float, high: float | None = None) -> None:
        """Delay every forwarded chunk by a uniform ``low..high`` seconds (0, 0: none)."""
        self._delay = (low, high if high is not None else low)

    def partition(self) -> None:
        """Stop forwarding anything, in both directions, on old and new connections."""
        self._open.clear()

    def stall_replies(self) -> None:
        """Hold every reply from Redis (requests still reach it and run): the client's reads
        stall. ``heal(reset=False)`` delivers what was held, on the same connections."""
        self._replies.clear()

    def heal(self, reset: bool = True) -> None:
        """Let traffic flow again; with ``reset``, connections that hung are reset first (a real
        client would have timed them out; what they held in flight is lost)."""
        if reset:
            self.reset()
        self._replies.set()
        self._open.set()

    def reset(self) -> int:
        """Abort every live connection with a TCP RST; returns how many were cut."""
        with self._lock:
            conns, self._conns = self._conns, []
        for pair in conns:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.close()
        return len(conns)

    def close(self) -> None:
        self._closed = True
        self._open.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.reset()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.append((client, upstream))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self._replies),
                             daemon=True).start()  # fmt: skip

    def _pump(self, src: socket.socket, dst: socket.socket,
              gate: threading.Event | None = None) -> None:  # fmt: skip
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while not (self._open.wait(0.05) and (gate is None or gate.wait(0.05))):
                    if src.fileno() < 0:
                        return
                low, high = self._delay
                if high > 0:
                    time.sleep(self._rng.uniform(low, high))
                self._open.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
