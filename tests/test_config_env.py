"""Tests for the precedence CLI flag > environment > file > default, env parsing and CLI flags."""

from __future__ import annotations

import argparse

import pytest

from taskqueue.config import TaskQueueConfig, add_cli_flags
from taskqueue.errors import ConfigError

FILE = """
[redis]
url = "redis://file:6379"
[workers]
initial_count = 2
queues = ["file_q"]
[scheduler]
enabled = false
"""

# (path, file value, env var, env text, env value, cli argv, cli value, default)
CASES = [
    ("redis.url", "redis://file:6379", "TASKQUEUE_REDIS__URL", "redis://env:6379",
     "redis://env:6379", ["--redis-url", "redis://cli:6379"], "redis://cli:6379",
     "redis://127.0.0.1:6379"),
    ("workers.initial_count", 2, "TASKQUEUE_WORKERS__INITIAL_COUNT", "3", 3, ["-w", "5"], 5, 4),
    ("scheduler.enabled", False, "TASKQUEUE_SCHEDULER__ENABLED", "yes", True,
     ["--no-enable-scheduler"], False, False),
    ("workers.queues", ["file_q"], "TASKQUEUE_WORKERS__QUEUES", "e1, e2", ["e1", "e2"],
     ["-q", "c1,c2", "-q", "c3"], ["c1", "c2", "c3"], ["high_priority", "default", "low_priority"]),
]  # fmt: skip


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_cli_flags(parser)
    return parser.parse_args(argv)


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / "tq.toml"
    path.write_text(FILE)
    return path


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_precedence(conf, case):
    path, file_v, env_name, env_text, env_v, argv, cli_v, default = case
    env = {env_name: env_text}
    assert TaskQueueConfig.load(env={}).get(path) == default
    cfg = TaskQueueConfig.load(conf, env={})
    assert (cfg.get(path), cfg.source_of(path)) == (file_v, "file")
    cfg = TaskQueueConfig.load(conf, env=env, cli=parse([]))
    assert (cfg.get(path), cfg.source_of(path)) == (env_v, "env")
    cfg = TaskQueueConfig.load(conf, env=env, cli=parse(argv))
    assert (cfg.get(path), cfg.source_of(path)) == (cli_v, "cli")


def test_cli_as_dict_by_path_or_dest():
    cfg = TaskQueueConfig.load(env={}, cli={"workers.initial_count": 7, "redis__url": "redis://d"})
    assert cfg.workers.initial_count == 7 and cfg.redis.url == "redis://d"
    assert cfg.source_of("workers.initial_count") == "cli"


def test_unrelated_namespace_attributes_are_ignored():
    ns = argparse.Namespace(command="worker", workers__initial_count="6", verbose=None)
    assert TaskQueueConfig.load(env={}, cli=ns).workers.initial_count == 6


def test_bad_cli_value_names_the_flag():
    with pytest.raises(ConfigError) as info:
        TaskQueueConfig.load(env={}, cli=parse(["-w", "many"]))
    msg = str(info.value)
    assert "--workers" in msg and "workers.initial_count" in msg and "'many'" in msg
    assert "integer" in msg


def test_familiar_aliases_and_canonical_wins():
    env = {"REDIS_URL": "redis://alias", "LOG_LEVEL": "debug", "LOG_FORMAT": "JSON"}
    cfg = TaskQueueConfig.load(env=env)
    assert cfg.redis.url == "redis://alias" and cfg.logging.level == "DEBUG"
    assert cfg.logging.format == "json"
    env["TASKQUEUE_REDIS__URL"] = "redis://canonical"
    assert TaskQueueConfig.load(env=env).redis.url == "redis://canonical"


def test_nested_section_env_name():
    env = {"TASKQUEUE_AUTOSCALER__SCALING_TRIGGERS__LEARNING_RATE": "0.25"}
    cfg = TaskQueueConfig.load(env=env)
    assert cfg.autoscaler.scaling_triggers.learning_rate == 0.25


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("1", True), ("YES", True), ("on", True), ("false", False), ("0", False),
     ("no", False)],
)  # fmt: skip
def test_env_bools(text, value):
    env = {"TASKQUEUE_AUTOSCALER__ENABLED": text}
    assert TaskQueueConfig.load(env=env).autoscaler.enabled is value


@pytest.mark.parametrize(
    ("name", "text", "allowed"),
    [
        ("TASKQUEUE_AUTOSCALER__ENABLED", "maybe", "boolean"),
        ("TASKQUEUE_WORKERS__INITIAL_COUNT", "2.5", "integer"),
        ("TASKQUEUE_AUTOSCALER__TARGET_SLA__MIN_SUCCESS_RATE", "high", "number"),
        ("TASKQUEUE_AUTOSCALER__TARGET_SLA__MIN_SUCCESS_RATE", "1.5", "between 0 and 1"),
        ("TASKQUEUE_WORKERS__QUEUES", "a,b c", "[A-Za-z0-9_.:-]{1,128}"),
        ("LOG_LEVEL", "chatty", "DEBUG, INFO"),
    ],
)
def test_bad_env_values_name_the_variable(name, text, allowed):
    with pytest.raises(ConfigError) as info:
        TaskQueueConfig.load(env={name: text})
    msg = str(info.value)
    assert f"environment variable {name}" in msg and allowed in msg


def test_unknown_taskqueue_env_var_did_you_mean():
    with pytest.raises(ConfigError, match="did you mean TASKQUEUE_REDIS__POOL_SIZE"):
        TaskQueueConfig.load(env={"TASKQUEUE_REDIS__POOLSIZE": "3"})
    # a plain TASKQUEUE_ variable without a section separator is not a setting; leave it alone
    assert TaskQueueConfig.load(env={"TASKQUEUE_DEBUG": "1"})


def test_cross_check_names_both_origins(conf):
    env = {"TASKQUEUE_AUTOSCALER__MIN_WORKERS": "20"}
    with pytest.raises(ConfigError) as info:
        TaskQueueConfig.load(conf, env=env, cli={"autoscaler.max_workers": 8})
    msg = str(info.value)
    assert "environment variable TASKQUEUE_AUTOSCALER__MIN_WORKERS" in msg
    assert (
        "autoscaler.max_workers = 8" in msg and "command-line flag --autoscaler-max-workers" in msg
    )


def test_config_path_from_environment(conf):
    cfg = TaskQueueConfig.load(env={"TASKQUEUE_CONFIG": str(conf)})
    assert cfg.workers.initial_count == 2 and cfg.origin_of("workers.initial_count") == str(conf)


def test_import_flag_is_repeatable_and_flags_default_to_absent():
    assert vars(parse([])) == {}
    ns = parse(["-i", "app.tasks", "--import", "app.more", "-a", "-s"])
    cfg = TaskQueueConfig.load(env={}, cli=ns)
    assert cfg.workers.imports == ["app.tasks", "app.more"]
    assert cfg.autoscaler.enabled and cfg.scheduler.enabled
