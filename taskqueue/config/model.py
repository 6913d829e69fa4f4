"""The loaded configuration: one value per setting, where it came from, and section access.

Duties:
1. Apply the precedence CLI flag > environment > config file > default (``TaskQueueConfig.load``).
2. Give read access by section (``cfg.redis.url``) and by path (``cfg.get("redis.url")``).
3. Remember the source of every value (``source_of``) for errors and ``tqctl config``.
4. Validate the whole (``validate``) and export it with secrets redacted (``as_dict``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from taskqueue.config import loader
from taskqueue.config.schema import BY_PATH, SECTIONS, SETTINGS, TABLE_ARRAYS
from taskqueue.errors import ConfigError

CONFIG_ENV = "TASKQUEUE_CONFIG"  # path of the config file when load() gets none
#: Files looked for in the working directory when neither a path nor $TASKQUEUE_CONFIG is given.
LOCAL_FILES = ("task-queue.toml", "task-queue.yaml", "task-queue.yml")


def discover(env: Mapping[str, str] | None = None) -> Path | None:
    """The config file to use when none is given: ``$TASKQUEUE_CONFIG``, else the first of
    ``LOCAL_FILES`` in the working directory, else None (defaults and environment only)."""
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    return next((Path(n) for n in LOCAL_FILES if Path(n).is_file()), None)


_TOP_SECTIONS = [s for s in SECTIONS if "." not in s]


class Section:
    """Attribute access to one section: ``cfg.autoscaler.scaling_triggers.learning_rate``."""

    __slots__ = ("_cfg", "_name")

    def __init__(self, cfg: TaskQueueConfig, name: str) -> None:
        self._cfg = cfg
        self._name = name

    def __getattr__(self, key: str) -> Any:
        path = f"{self._name}.{key}"
        if path in BY_PATH:
            return self._cfg.get(path)
        if path in SECTIONS:
            return Section(self._cfg, path)
        match = loader.suggest(path)
        hint = f"; did you mean {match!r}?" if match else ""
        raise AttributeError(f"no setting {path!r}{hint}")

    def as_dict(self, redacted: bool = True) -> dict[str, Any]:
        return self._cfg._nested(self._name, redacted)

    def __repr__(self) -> str:
        return f"<Section [{self._name}] {self.as_dict()!r}>"


class TaskQueueConfig:
    """Every setting's value. Build it with ``default()``, ``from_file()`` or ``load()``."""

    def __init__(self, values: Mapping[str, Any], origins: Mapping[str, str]) -> None:
        self._values = dict(values)
        self._origins = dict(origins)
        #: The file the values were read from (None: defaults, environment and flags only).
        self.path: str | None = None  # "default", a file path, "environment variable X", ...

    # -- constructors -----------------------------------------------------------------------

    @classmethod
    def default(cls) -> TaskQueueConfig:
        """Every setting at its declared default."""
        values: dict[str, Any] = {s.path: _copy(s.default) for s in SETTINGS}
        values.update({name: [] for name in TABLE_ARRAYS})
        return cls(values, {path: "default" for path in values})

    @classmethod
    def from_file(cls, path: str | Path) -> TaskQueueConfig:
        """Defaults overlaid with one file (no environment, no flags), validated."""
        return cls.load(path, env={})

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        cli: Any = None,
    ) -> TaskQueueConfig:
        """Build the configuration: CLI flag > environment > file > default, then validate.

        ``env`` defaults to ``os.environ`` (pass ``{}`` to ignore it). Without ``path`` the file
        is ``discover(env)``: ``$TASKQUEUE_CONFIG``, else ``./task-queue.toml`` (or ``.yaml``). ``cli`` is an argparse Namespace (from a
        parser prepared with ``add_cli_flags``) or a dict keyed by path or dest.
        """
        env = os.environ if env is None else env
        if path is None:
            path = discover(env)
        cfg = cls.default()
        cfg.path = None if path is None else str(path)
        if path is not None:
            cfg._apply(loader.flatten_file(loader.read_file(path), str(path)))
        cfg._apply(loader.from_env(env))
        if cli is not None:
            cfg._apply(loader.from_cli(cli))
        return cfg.validate()

    def _apply(self, found: loader.Found) -> None:
        for path, (value, where) in found.items():
            self._values[path] = value
            self._origins[path] = where

    # -- access -----------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Section:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in _TOP_SECTIONS:
            return Section(self, name)
        raise AttributeError(f"no config section {name!r}; sections: {', '.join(_TOP_SECTIONS)}")

    @property
    def schedules(self) -> list[dict[str, Any]]:
        """The ``[[schedules]]`` entries: every field (absent ones None) plus ``where``."""
        return [dict(e) for e in self._values.get("schedules", [])]

    def get(self, path: str) -> Any:
        """The value of ``section.key``; raises ``ConfigError`` for an unknown path."""
        try:
            return self._values[path]
        except KeyError:
            match = loader.suggest(path)
            hint = f"; did you mean {match!r}?" if match else ""
            raise ConfigError(f"unknown setting {path!r}{hint}") from None

    def source_of(self, path: str) -> str:
        """Where the value came from: ``"cli"``, ``"env"``, ``"file"`` or ``"default"``."""
        self.get(path)
        where = self._origins[path]
        if where == "default":
            return "default"
        if where.startswith("environment variable"):
            return "env"
        if where.startswith("command-line"):
            return "cli"
        return "file"

    def origin_of(self, path: str) -> str:
        """The precise origin: the file path, ``environment variable X``, a flag, or ``default``."""
        self.get(path)
        return self._origins[path]

    # -- checks and export ------------------------------------------------------------------

    def validate(self) -> TaskQueueConfig:
        """Re-check every value and the cross-setting rules; return ``self`` or raise ConfigError."""
        errors: list[str] = []
        for s in SETTINGS:
            try:
                self._values[s.path] = loader.coerce(s, self._values[s.path], self._origins[s.path])
            except ConfigError as exc:
                errors.append(str(exc))
        if not errors and self._values.get("redis.url_file"):
            path = self._values["redis.url_file"]
            url, error = loader.url_from_file(path)
            if error:
                errors.append(error)
            else:
                self._values["redis.url"] = url
                self._origins["redis.url"] = f"file {path} (redis.url_file)"
        if not errors:
            errors.extend(loader.cross_check(self._values, self._origins))
        if errors:
            raise ConfigError("\n".join(errors))
        return self

    def as_dict(self, redacted: bool = True) -> dict[str, Any]:
        """Nested ``{section: {key: value}}``; URL credentials and tokens hidden when ``redacted``."""
        out: dict[str, Any] = {name: self._nested(name, redacted) for name in _TOP_SECTIONS}
        for name in TABLE_ARRAYS:
            if self._values.get(name):
                out[name] = [
                    {k: v for k, v in e.items() if k != "where"} for e in self._values[name]
                ]
        return out

    def _nested(self, section: str, redacted: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for s in SETTINGS:
            if s.section == section:
                value = _copy(self._values[s.path])
                out[s.key] = s.display(value) if redacted else value
        for sub in SECTIONS:
            if sub.startswith(section + ".") and sub.count(".") == section.count(".") + 1:
                out[sub.rsplit(".", 1)[1]] = self._nested(sub, redacted)
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TaskQueueConfig) and self._values == other._values

    def __repr__(self) -> str:
        changed = {
            p: BY_PATH[p].display(v) if p in BY_PATH else v
            for p, v in self._values.items()
            if self._origins[p] != "default"
        }
        return f"<TaskQueueConfig {changed!r}>"


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value
