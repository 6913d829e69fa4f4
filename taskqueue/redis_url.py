"""taskqueue's Redis URLs, parsed (pure): which kind of client, which nodes, which credentials.

    redis://[user:password@]host[:port][/db]              one server (rediss:// with TLS)
    unix://[user:password@]/path/to/redis.sock[?db=n]     one server on a Unix socket
    redis+cluster://[user:password@]host:port[,host:port...]      Redis Cluster, any nodes as seeds
    redis+sentinel://[user:password@]host:port[,host:port...]/service_name[/db]   via Sentinel
    rediss+cluster://..., rediss+sentinel://...           the same over TLS

The credentials are those of the Redis servers (for Sentinel: of the primary and replicas, not of
the Sentinels). Query parameters (``?socket_timeout=2``) are redis-py's connection options (of
the servers: under Sentinel they do not reach the Sentinels); the database goes in the path.
``credential_problems`` holds the rules between the URL and the ``[redis]`` credential settings
(``username``/``password`` for the servers, ``sentinel_username``/``sentinel_password`` for the
Sentinels themselves).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

#: scheme -> (kind, TLS)
SCHEMES = {
    "redis": ("single", False),
    "rediss": ("single", True),
    "unix": ("single", False),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
}
DEFAULT_PORT = {"cluster": 6379, "sentinel": 26379}
FORMS = (
    "redis://host:port/db, rediss://..., unix:///path.sock, "
    "redis+cluster://host:port[,host:port...], "
    "redis+sentinel://host:port[,host:port...]/service_name[/db] (rediss+ for TLS)"
)


class BadRedisUrl(ValueError):
    """A Redis URL taskqueue cannot use; the message says what is wrong (never the password)."""


@dataclass(frozen=True)
class RedisTarget:
    kind: str  # single | cluster | sentinel
    tls: bool
    hosts: tuple[tuple[str, int], ...] = ()
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    service: str | None = None
    db: int = 0
    query: str = ""


def parse_redis_url(url: str) -> RedisTarget:
    """Parse ``url``; raise BadRedisUrl naming the problem and the accepted forms."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise BadRedisUrl(f"unsupported Redis URL scheme {scheme + sep!r}: use {FORMS}")
    kind, tls = SCHEMES[scheme.lower()]
    if kind == "single":
        if not rest:
            raise BadRedisUrl(f"Redis URL has no host: use {FORMS}")
        return RedisTarget(kind, tls)
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    username = password = None
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        user, has_pw, pw = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if has_pw else None
    if any(p.partition("=")[0].lower() == "db" for p in query.split("&")):
        where = "none: Redis Cluster has only db 0" if kind == "cluster" else "/service_name/db"
        raise BadRedisUrl(f"{scheme}:// takes the database in its path ({where}), not ?db=")
    hosts = tuple(_host_port(h, kind, scheme) for h in netloc.split(","))
    parts = [p for p in path.split("/") if p]
    service, db = None, 0
    if kind == "cluster":
        if parts and parts != ["0"]:
            raise BadRedisUrl(
                f"{scheme}:// takes no database (Redis Cluster has only db 0): got /{path}"
            )
    else:
        if not parts or len(parts) > 2:
            raise BadRedisUrl(
                f"{scheme}:// needs the Sentinel service name: "
                f"{scheme}://host:26379[,host:port...]/service_name[/db]"
            )
        service = unquote(parts[0])
        if len(parts) == 2:
            if not parts[1].isdigit():
                raise BadRedisUrl(f"{scheme}:// database must be a number, got {parts[1]!r}")
            db = int(parts[1])
    return RedisTarget(kind, tls, hosts, username, password, service, db, query)


def _host_port(text: str, kind: str, scheme: str) -> tuple[str, int]:
    if not text:
        raise BadRedisUrl(f"{scheme}:// needs at least one host:port (an empty one was given)")
    if text.startswith("["):  # [IPv6]:port
        host, _, port = text[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if port and not port.isdigit():
        raise BadRedisUrl(f"{scheme}:// bad port in {text!r}")
    number = int(port) if port else DEFAULT_PORT[kind]
    if not host or not 0 < number < 65536:
        raise BadRedisUrl(f"{scheme}:// bad host:port {text!r}")
    return host, number


def credential_problems(url: str, *, server_auth: bool, sentinel_auth: bool) -> list[str]:
    """What is wrong between ``url`` and the credential settings given (``server_auth``:
    redis.username or redis.password set; ``sentinel_auth``: redis.sentinel_username or
    redis.sentinel_password set). Each message names the settings; none quotes a value."""
    problems = []
    scheme = url.partition("://")[0].lower()
    if sentinel_auth and SCHEMES.get(scheme, ("",))[0] != "sentinel":
        problems.append(
            "redis.sentinel_username/redis.sentinel_password are set but redis.url is not a "
            "redis+sentinel:// or rediss+sentinel:// URL: they are the Sentinels' own "
            "credentials; leave them unset (the servers' are redis.username/redis.password)"
        )
    try:
        userinfo = "@" in urlsplit(url).netloc
    except ValueError:
        userinfo = False
    if server_auth and userinfo:
        problems.append(
            "redis.username/redis.password are set and redis.url carries credentials too: "
            "give the servers' credentials in one place (the URL, or redis.username and "
            "redis.password)"
        )
    return problems
