"""Turn files, environment variables and CLI flags into checked setting values.

Duties:
1. Read a TOML or YAML file, naming the file (and line) in every syntax error.
2. Flatten its tables to ``section.key`` paths, rejecting unknown keys with a "did you mean" hint.
3. Coerce each raw value to its declared type (strictly for files, by parsing for text sources)
   and check it against the declaration.
4. Check the rules that involve two settings (``cross_check``).

Every failure raises ``ConfigError`` naming where the value came from, the key path, the bad
value and what is allowed. ``model.TaskQueueConfig`` applies the precedence.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from taskqueue.config.schema import (
    ALIAS_PATHS,
    BY_PATH,
    ENV_PREFIX,
    SECTION_ALIASES,
    SECTIONS,
    SETTINGS,
    TABLE_ARRAYS,
    Setting,
    TableArray,
)
from taskqueue.errors import ConfigError
from taskqueue.redact import redact_text
from taskqueue.redis_url import credential_problems

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

YAML_HINT = "pip install 'taskqueue[yaml]'"
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_SECTION_PREFIXES = {
    ".".join(s.split(".")[: i + 1]) for s in SECTIONS for i in range(s.count(".") + 1)
}

# A value found somewhere: (value, where) -- where is "conf/x.toml", "environment variable X", ...
Found = dict[str, tuple[Any, str]]


def read_file(path: str | Path) -> dict[str, Any]:
    """Parse a ``.toml``, ``.yaml`` or ``.yml`` file into a dict."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise ConfigError(
            f"{path}: unsupported config file type {suffix!r}; use .toml, .yaml or .yml"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return _read_yaml(path, text)


def _read_yaml(path: Path, text: str) -> dict[str, Any]:
    try:
        import yaml
    except ImportError:
        raise ConfigError(
            f"{path}: reading YAML config files needs PyYAML, which is not installed; "
            f"install it with: {YAML_HINT}"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections, got {type(data).__name__}"
        )
    return data


def flatten_file(data: Mapping[str, Any], where: str) -> Found:
    """Map a parsed file to ``{path: (typed value, where)}``; raise on any bad key or value."""
    if "web" in data and "actix" in data:
        raise ConfigError(f"{where}: both [web] and its alias [actix] are present; keep only [web]")
    raw: dict[str, Any] = {}
    errors: list[str] = []
    found: Found = {}
    for name, value in data.items():
        if str(name) in TABLE_ARRAYS:
            found[str(name)] = (table_array(TABLE_ARRAYS[str(name)], value, where, errors), where)
            continue
        _walk(SECTION_ALIASES.get(str(name), str(name)), value, raw, errors, where)
    for path, value in raw.items():
        setting = BY_PATH.get(path) or ALIAS_PATHS[path]
        if setting.path in found:
            errors.append(
                f"{where}: {path} and {setting.path} are the same setting; keep only {setting.path}"
            )
            continue
        try:
            found[setting.path] = (coerce(setting, value, where, path=path), where)
        except ConfigError as exc:
            errors.append(str(exc))
    if errors:
        raise ConfigError("\n".join(errors))
    return found


def _walk(path: str, value: Any, out: dict[str, Any], errors: list[str], where: str) -> None:
    if path in BY_PATH or path in ALIAS_PATHS:
        if isinstance(value, dict):
            errors.append(
                f"{where}: {path} is a setting, not a table; expected {_setting(path).allowed()}"
            )
        else:
            out[path] = value
    elif path in _SECTION_PREFIXES:
        if not isinstance(value, dict):
            errors.append(f"{where}: [{path}] is a section and must be a table, got {value!r}")
            return
        for key, sub in value.items():
            _walk(f"{path}.{key}", sub, out, errors, where)
    else:
        errors.append(f"{where}: unknown {_what(path, value)}{_hint(path, value)}")


def table_array(
    table: TableArray, value: Any, where: str, errors: list[str]
) -> list[dict[str, Any]]:
    """Check a ``[[table]]`` array; each entry gets every field (defaults filled) and ``where``."""
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        errors.append(f"{where}: {table.name} must be an array of tables ([[{table.name}]])")
        return []
    fields = {f.key: f for f in table.fields}
    entries: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for i, raw in enumerate(value):
        at = f"{where}: {table.name}[{i}]"
        entry: dict[str, Any] = {"where": at}
        bad = False
        for key, item in raw.items():
            f = fields.get(str(key))
            if f is None:
                match = difflib.get_close_matches(str(key), list(fields), n=1)
                hint = f"did you mean {match[0]!r}? " if match else ""
                errors.append(f"{at}: unknown key {key!r}; {hint}Known keys: {', '.join(fields)}")
                bad = True
                continue
            try:
                entry[f.key] = coerce(f, item, at, path=f.key)
            except ConfigError as exc:
                errors.append(str(exc))
                bad = True
        if bad:
            continue
        for f in table.fields:
            entry.setdefault(f.key, f.default)
        field, other = table.default_from
        if entry[field] is None:
            entry[field] = entry[other]
        problems = table.check(entry)
        errors.extend(f"{at}: {p}" for p in problems)
        unique = entry.get(table.unique)
        if unique is not None and unique in seen:
            errors.append(f"{at}: {table.unique} {unique!r} is already used by {seen[unique]}")
        elif unique is not None:
            seen[unique] = f"{table.name}[{i}]"
        if not problems:
            entries.append(entry)
    return entries


def _setting(path: str) -> Setting:
    return BY_PATH.get(path) or ALIAS_PATHS[path]


def _what(path: str, value: Any) -> str:
    return f"section [{path}]" if isinstance(value, dict) else f"key {path!r}"


def _hint(path: str, value: Any) -> str:
    """A "did you mean" suggestion and the keys allowed at that place."""
    if isinstance(value, dict):
        match = difflib.get_close_matches(
            path, sorted(_SECTION_PREFIXES | set(SECTION_ALIASES)), n=1
        )
        hint = f"; did you mean [{match[0]}]?" if match else ";"
        return f"{hint} Known sections: {', '.join(SECTIONS)}"
    match = suggest(path)
    hint = f"; did you mean {match!r}?" if match else ";"
    section = path.rsplit(".", 1)[0] if "." in path else ""
    keys = [s.key for s in SETTINGS if s.section == section]
    if keys:
        return f"{hint} Known keys in [{section}]: {', '.join(keys)}"
    return f"{hint} Known sections: {', '.join(SECTIONS)}"


def suggest(path: str) -> str | None:
    """The closest setting path to ``path`` (whole path first, then the last component)."""
    match = difflib.get_close_matches(path, list(BY_PATH) + list(ALIAS_PATHS), n=1, cutoff=0.75)
    if match:
        return match[0]
    leaf = path.rsplit(".", 1)[-1]
    leaves = {s.key: s.path for s in SETTINGS}
    match = difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.75)
    return leaves[match[0]] if match else None


def coerce(
    setting: Setting, value: Any, where: str, *, path: str | None = None, text: bool = False
) -> Any:
    """Convert ``value`` to the setting's type and check it; ``text`` parses strings (env, CLI)."""
    path = path or setting.path
    try:
        typed = (
            _parse_text(setting, value)
            if text and isinstance(value, str)
            else _strict(setting, value)
        )
    except (TypeError, ValueError):
        raise ConfigError(
            _bad(where, path, setting, value, f"expected {setting.allowed()}")
        ) from None
    if setting.normalize is not None:
        typed = setting.normalize(typed)
    problem = setting.check(typed)
    if problem is not None:
        raise ConfigError(_bad(where, path, setting, typed, f"allowed: {problem}"))
    return typed


def _strict(setting: Setting, value: Any) -> Any:
    kind = setting.type
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, str):
        return value
    if kind is list and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    if kind is tuple and isinstance(value, (list, tuple)):
        return list(value)
    if kind is dict and isinstance(value, dict):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not {setting.type_name}")


def _parse_text(setting: Setting, text: str) -> Any:
    kind = setting.type
    stripped = text.strip()
    if kind is bool:
        if stripped.lower() in _TRUE:
            return True
        if stripped.lower() in _FALSE:
            return False
        raise ValueError(text)
    if kind is int:
        return int(stripped)
    if kind is float:
        return float(stripped)
    if kind is list:
        return split_list(text)
    return text


def url_from_file(path: str) -> tuple[str, str | None]:
    """(the Redis URL on the first line of ``path``, None) or ("", what is wrong)."""
    try:
        with open(path, encoding="utf-8") as f:
            url = f.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        return "", f"redis.url_file {path!r}: cannot read it ({why or exc})"
    if not url or BY_PATH["redis.url"].validator(url):  # type: ignore[misc]
        # (the validator's message quotes the value: it may hold a password)
        return "", (f"redis.url_file {path!r}: its first line is not a Redis URL "
                    "(redis://[:password@]host:port/db, rediss://..., unix:///path.sock, ...)")  # fmt: skip
    return url, None


def split_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _bad(where: str, path: str, setting: Setting, value: Any, allowed: str) -> str:
    shown = redact_text(repr(setting.display(value) if not setting.secret else "***"))
    return f"{where}: {path} = {shown} is invalid; {allowed}"


def from_env(env: Mapping[str, str]) -> Found:
    """Settings given as environment variables (canonical name wins over an alias)."""
    found: Found = {}
    errors: list[str] = []
    for setting in SETTINGS:
        for name in (setting.env, *setting.env_aliases):
            if name in env:
                where = f"environment variable {name}"
                try:
                    found[setting.path] = (coerce(setting, env[name], where, text=True), where)
                except ConfigError as exc:
                    errors.append(str(exc))
                break
    known = {s.env for s in SETTINGS}
    for name in env:
        if name.startswith(ENV_PREFIX) and "__" in name[len(ENV_PREFIX) :] and name not in known:
            match = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
            hint = f"; did you mean {match[0]}?" if match else ""
            errors.append(f"environment variable {name}: unknown setting{hint}")
    if errors:
        raise ConfigError("\n".join(errors))
    return found


def from_cli(cli: Any) -> Found:
    """Settings given on the command line: an argparse Namespace or a dict.

    Keys may be ``Setting.dest`` (``workers__initial_count``) or the path (``workers.initial_count``);
    other keys and ``None`` values are ignored, so a whole parsed Namespace can be passed.
    """
    items = vars(cli) if not isinstance(cli, Mapping) else cli
    by_dest = {s.dest: s for s in SETTINGS}
    found: Found = {}
    errors: list[str] = []
    for key, value in items.items():
        setting = by_dest.get(key) or BY_PATH.get(key)
        if setting is None or value is None:
            continue
        where = (
            f"command-line flag {setting.cli[0]}" if setting.cli else f"command-line setting {key}"
        )
        if setting.type is list and isinstance(value, (list, tuple)):
            value = [item for v in value for item in (split_list(v) if isinstance(v, str) else [v])]
        try:
            found[setting.path] = (coerce(setting, value, where, text=True), where)
        except ConfigError as exc:
            errors.append(str(exc))
    if errors:
        raise ConfigError("\n".join(errors))
    return found


# (smaller, larger, strict): the first must be <= (or < when strict) the second
ORDERED: list[tuple[str, str, bool]] = [
    ("autoscaler.min_workers", "autoscaler.max_workers", False),
    ("autoscaler.scale_down_threshold", "autoscaler.scale_up_threshold", True),
    ("alerts.min_worker_utilization", "alerts.max_worker_utilization", False),
]


def cross_check(values: Mapping[str, Any], origins: Mapping[str, str]) -> Iterable[str]:
    """Yield one message per broken rule that involves two settings."""
    for low, high, strict in ORDERED:
        a, b = values[low], values[high]
        if a > b or (strict and a == b):
            op = "<" if strict else "<="
            yield (
                f"{origins[low]}: {low} = {a!r} is greater than {high} = {b!r} (from {origins[high]})"
                if a > b
                else f"{origins[low]}: {low} = {a!r} equals {high} = {b!r} (from {origins[high]})"
            ) + f"; allowed: {low} {op} {high}"
    hung, beat = values["workers.hung_timeout"], values["workers.heartbeat_interval"]
    if hung and hung <= beat:
        yield (
            f"{origins['workers.hung_timeout']}: workers.hung_timeout = {hung!r} is not greater than "
            f"workers.heartbeat_interval = {beat!r} (from {origins['workers.heartbeat_interval']}); "
            "allowed: 0 (never) or a value > workers.heartbeat_interval"
        )
    tls_files = [k for k in ("redis.tls_ca_file", "redis.tls_cert_file", "redis.tls_key_file")
                 if values[k]]  # fmt: skip
    url = values["redis.url"]
    if tls_files and not url.split("://", 1)[0].lower().startswith("rediss"):
        yield (
            f"{origins[tls_files[0]]}: {tls_files[0]} is set but redis.url (from "
            f"{origins['redis.url']}) does not use TLS; allowed: a rediss://, rediss+cluster:// "
            "or rediss+sentinel:// URL, or no TLS files"
        )
    yield from _credential_rules(values, origins)
    if bool(values["redis.tls_cert_file"]) != bool(values["redis.tls_key_file"]):
        yield (
            f"{origins['redis.tls_cert_file']}: redis.tls_cert_file and redis.tls_key_file go "
            "together; allowed: both set or neither"
        )


def _credential_rules(values: Mapping[str, Any], origins: Mapping[str, str]) -> Iterable[str]:
    """The credential settings against redis.url (``redis_url.credential_problems``)."""
    server = [k for k in ("redis.username", "redis.password") if values[k]]
    sentinel = [k for k in ("redis.sentinel_username", "redis.sentinel_password") if values[k]]
    for problem in credential_problems(values["redis.url"], server_auth=bool(server),
                                       sentinel_auth=bool(sentinel)):  # fmt: skip
        given = sentinel[0] if problem.startswith("redis.sentinel") else server[0]
        yield f"{origins[given]}: {problem} (redis.url from {origins['redis.url']})"
