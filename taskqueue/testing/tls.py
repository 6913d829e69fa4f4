"""Certificates for a TLS test server: a private CA, a server certificate for 127.0.0.1 and a
client certificate, all made with the ``openssl`` binary into a directory.

    certs = make_certs(tmp_path)
    server = RedisServer(tls=certs).start()      # rediss://127.0.0.1:<port>/0, client certs required
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Elliptic-curve keys: generated in milliseconds, accepted by every TLS build of Redis.
_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
_CA_EXT = [
    "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    "-addext", "subjectKeyIdentifier=hash",
]  # fmt: skip
_LEAF_EXT = """basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
authorityKeyIdentifier=keyid
subjectKeyIdentifier=hash
"""


@dataclass(frozen=True)
class TlsFiles:
    """Paths of a CA, a server certificate and a client certificate (PEM)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def server_args(self, *, auth_clients: str = "yes") -> list[str]:
        """redis-server settings for these files; ``auth_clients`` is yes/optional/no."""
        return [
            "--tls-cert-file", str(self.server_cert), "--tls-key-file", str(self.server_key),
            "--tls-ca-cert-file", str(self.ca), "--tls-auth-clients", auth_clients,
            "--tls-replication", "yes", "--tls-cluster", "yes",
        ]  # fmt: skip

    def client_kwargs(self) -> dict[str, Any]:
        """redis-py keyword arguments connecting with the client certificate."""
        return {
            "ssl": True,
            "ssl_ca_certs": str(self.ca),
            "ssl_certfile": str(self.client_cert),
            "ssl_keyfile": str(self.client_key),
        }


def find_openssl() -> str | None:
    return shutil.which("openssl")


def _run(*args: str, cwd: Path) -> None:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args[:3])} failed: {proc.stderr.strip()}")


def make_certs(directory: Path | str, *, ca_name: str = "taskqueue test CA") -> TlsFiles:
    """Make a CA and a server and a client certificate signed by it, in ``directory``."""
    openssl = find_openssl()
    if openssl is None:
        raise RuntimeError("no openssl binary: install it (apt-get install openssl)")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    subj = f"/CN={ca_name}"
    _run(openssl, "req", "-x509", *_KEY, "-keyout", "ca.key", "-out", "ca.crt", "-days", "7",
         "-subj", subj, *_CA_EXT, cwd=d)  # fmt: skip
    (d / "leaf.ext").write_text(_LEAF_EXT)
    for name in ("server", "client"):
        _run(openssl, "req", *_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN=taskqueue test {name}", cwd=d)  # fmt: skip
        _run(openssl, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "7", "-out", f"{name}.crt", "-extfile", "leaf.ext",
             cwd=d)  # fmt: skip
    return TlsFiles(d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt",
                    d / "client.key")  # fmt: skip


@functools.cache
def tls_support(binary: str) -> str | None:
    """None if ``binary`` (a redis-server) was built with TLS, else the reason it cannot serve it."""
    proc = subprocess.run(
        [binary, "--port", "0", "--tls-port", "0"], capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    if "not listen anywhere" in out:
        return None
    last = out.strip().splitlines()[-1] if out.strip() else f"exit status {proc.returncode}"
    return f"{binary} was built without TLS support (it rejects --tls-port: {last})"
