"""Tests for taskqueue/config: schema, files, validation messages, conf/, README, docs."""

from __future__ import annotations

import builtins
import re
import subprocess
import sys
from pathlib import Path

import pytest

from taskqueue.config import SETTINGS, TaskQueueConfig
from taskqueue.config.schema import BY_PATH
from taskqueue.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str, name: str = "tq.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_error(tmp_path: Path, text: str, name: str = "tq.toml") -> str:
    path = write(tmp_path, text, name)
    with pytest.raises(ConfigError) as info:
        TaskQueueConfig.from_file(path)
    message = str(info.value)
    assert str(path) in message
    return message


# -- schema ------------------------------------------------------------------------------


def test_every_default_passes_its_own_check():
    for s in SETTINGS:
        assert s.check(s.default) is None, s.path
        assert s.doc, s.path
    assert TaskQueueConfig.default().validate()


def test_each_setting_declared_once_with_derived_names():
    paths = [s.path for s in SETTINGS]
    assert len(paths) == len(set(paths))
    lr = BY_PATH["autoscaler.scaling_triggers.learning_rate"]
    assert lr.env == "TASKQUEUE_AUTOSCALER__SCALING_TRIGGERS__LEARNING_RATE"
    assert BY_PATH["redis.url"].env_aliases == ("REDIS_URL",)
    flags = {f for s in SETTINGS if s.cli for f in s.cli}
    for flag in ("--redis-url", "-r", "--workers", "-w", "--queues", "-q", "--import", "-i",
                 "--graceful-timeout", "--enable-scheduler", "-s", "--enable-autoscaler", "-a",
                 "--autoscaler-consecutive-signals", "--max-memory-per-child"):  # fmt: skip
        assert flag in flags


def test_defaults_and_section_access():
    cfg = TaskQueueConfig.default()
    assert cfg.redis.url == "redis://127.0.0.1:6379"
    assert cfg.redis.key_prefix == "tq"
    assert cfg.workers.queues == ["high_priority", "default", "low_priority"]
    assert cfg.workers.shutdown_grace_period == 30
    assert cfg.limits.max_payload_bytes == 1024 * 1024
    assert cfg.autoscaler.scaling_triggers.learning_rate == cfg.get(
        "autoscaler.scaling_triggers.learning_rate"
    )
    assert cfg.source_of("redis.url") == "default"
    with pytest.raises(AttributeError, match="did you mean"):
        _ = cfg.redis.pool_sise
    with pytest.raises(ConfigError, match="did you mean 'workers.queues'"):
        cfg.get("workers.queue")


def test_as_dict_redacts_url_and_token(tmp_path):
    path = write(tmp_path, '[redis]\nurl = "redis://u:hunter2@h:6379/0"\n[web]\ntoken = "s3cr3t"\n')
    cfg = TaskQueueConfig.from_file(path)
    shown = cfg.as_dict()
    assert shown["redis"]["url"] == "redis://***@h:6379/0"
    assert shown["web"]["token"] == "***"
    assert "hunter2" not in repr(cfg) and "s3cr3t" not in repr(cfg)
    assert cfg.as_dict(redacted=False)["web"]["token"] == "s3cr3t"
    assert shown["autoscaler"]["scaling_triggers"]["learning_rate"] == 0.1


# -- files -------------------------------------------------------------------------------


def test_file_values_and_aliases(tmp_path):
    path = write(
        tmp_path,
        "[actix]\nroute_prefix = '/x'\n[autoscaler]\nscale_up_threshold = 3.0\n"
        "scale_down_threshold = 1.0\nscale_up_cooldown = 12\n",
    )
    cfg = TaskQueueConfig.from_file(path)
    assert cfg.web.route_prefix == "/x"
    assert cfg.autoscaler.scale_up_threshold == 3.0
    assert cfg.autoscaler.scaling_triggers.scale_up_cooldown_seconds == 12.0
    assert cfg.source_of("web.route_prefix") == "file"


def test_unknown_key_did_you_mean(tmp_path):
    msg = load_error(tmp_path, "[redis]\npool_sise = 3\n")
    assert "redis.pool_sise" in msg and "did you mean 'redis.pool_size'?" in msg


def test_unknown_section_did_you_mean(tmp_path):
    msg = load_error(tmp_path, "[wokers]\ninitial_count = 3\n")
    assert "[wokers]" in msg and "did you mean [workers]?" in msg


def test_unknown_key_without_close_match_lists_known_keys(tmp_path):
    msg = load_error(tmp_path, "[scheduler]\nzzz = 100\n")
    assert "unknown key 'scheduler.zzz'; Known keys in [scheduler]: enabled, tick_interval" in msg


def test_misplaced_key_suggests_its_section(tmp_path):
    msg = load_error(tmp_path, "[workers]\nmin_workers = 3\n")
    assert "did you mean 'autoscaler.min_workers'?" in msg


@pytest.mark.parametrize(
    ("text", "key", "value", "allowed"),
    [
        ("[workers]\ninitial_count = 'four'", "workers.initial_count", "'four'", "integer"),
        ("[autoscaler]\nenabled = 'yes'", "autoscaler.enabled", "'yes'", "boolean"),
        ("[workers]\nqueues = 'default'", "workers.queues", "'default'", "list of strings"),
        ("[workers]\ninitial_count = -1", "workers.initial_count", "-1", "between 0 and 1024"),
        ("[autoscaler]\nscale_up_count = 0", "autoscaler.scale_up_count", "0", "between 1"),
        ("[autoscaler.scaling_triggers]\nlearning_rate = 1.5",
         "autoscaler.scaling_triggers.learning_rate", "1.5", "between 0 and 1"),
        ("[autoscaler.target_sla]\nmin_success_rate = -0.1",
         "autoscaler.target_sla.min_success_rate", "-0.1", "between 0 and 1"),
        ("[autoscaler.scaling_triggers]\nscale_down_cooldown_seconds = -5",
         "autoscaler.scaling_triggers.scale_down_cooldown_seconds", "-5.0", ">= 0"),
        ("[autoscaler.scaling_triggers]\nconsecutive_signals_required = 0",
         "autoscaler.scaling_triggers.consecutive_signals_required", "0", "between 1"),
        ("[logging]\nlevel = 'loud'", "logging.level", "'LOUD'", "DEBUG, INFO, WARN, WARNING"),
        ("[logging]\nformat = 'xml'", "logging.format", "'xml'", "json, compact, pretty"),
        ("[workers]\nqueues = ['ok', 'bad queue']", "workers.queues", "'bad queue'",
         "[A-Za-z0-9_.:-]{1,128}"),
        ("[workers]\nqueues = []", "workers.queues", "[]", "at least one queue"),
        ("[redis]\nurl = 'http://x'", "redis.url", "'http://x'", "redis://"),
        ("[web]\nport = 70000", "web.port", "70000", "between 1 and 65535"),
    ],
)  # fmt: skip
def test_invalid_value_messages(tmp_path, text, key, value, allowed):
    msg = load_error(tmp_path, text + "\n")
    assert key in msg and value in msg and allowed in msg


def test_min_workers_above_max_workers(tmp_path):
    msg = load_error(tmp_path, "[autoscaler]\nmin_workers = 10\nmax_workers = 5\n")
    assert "autoscaler.min_workers = 10" in msg and "autoscaler.max_workers = 5" in msg
    assert "allowed: autoscaler.min_workers <= autoscaler.max_workers" in msg


def test_bad_url_value_is_redacted_in_errors(tmp_path):
    msg = load_error(tmp_path, "[redis]\nurl = 'http://user:hunter2@x'\n")
    assert "hunter2" not in msg


def test_section_given_a_scalar_and_setting_given_a_table(tmp_path):
    assert "must be a table" in load_error(tmp_path, "redis = 3\n")
    assert "is a setting, not a table" in load_error(tmp_path, "[redis.url]\nx = 1\n")


def test_web_and_actix_together_rejected(tmp_path):
    assert "[actix]" in load_error(tmp_path, "[web]\nport = 1\n[actix]\nport = 2\n")


def test_toml_syntax_error_names_file_and_line(tmp_path):
    msg = load_error(tmp_path, "[redis]\npool_size = 3\nurl = \n")
    assert "invalid TOML" in msg and "line 3" in msg


def test_missing_file_and_bad_extension(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        TaskQueueConfig.from_file(tmp_path / "nope.toml")
    assert "unsupported" in load_error(tmp_path, "", name="tq.ini")


def test_yaml_file_loads(tmp_path):
    path = write(tmp_path, "workers:\n  queues: [a, b]\nlogging:\n  level: debug\n", "tq.yaml")
    cfg = TaskQueueConfig.from_file(path)
    assert cfg.workers.queues == ["a", "b"] and cfg.logging.level == "DEBUG"


def test_yaml_without_pyyaml_says_how_to_install(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_yaml(name, *args, **kwargs):
        if name == "yaml":
            raise ImportError("No module named 'yaml'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_yaml)
    msg = load_error(tmp_path, "workers: {}\n", name="tq.yml")
    assert "pip install 'taskqueue[yaml]'" in msg


# -- shipped files -----------------------------------------------------------------------


CONF_FILES = sorted(p for p in (ROOT / "conf").glob("*") if p.suffix in (".toml", ".yaml", ".yml"))


@pytest.mark.parametrize("path", CONF_FILES, ids=lambda p: p.name)
def test_every_conf_file_validates(path):
    """Every config example in conf/ loads and validates (conf/redis-acl.conf is a Redis file,
    checked by tests/test_acl.py)."""
    assert TaskQueueConfig.from_file(path).validate()


def test_conf_directory_has_the_four_examples():
    names = {p.name for p in (ROOT / "conf").iterdir()}
    assert {
        "task-queue.toml",
        "task-queue-worker.toml",
        "production-task-queue.toml",
        "task-queue.yaml",
    } <= names


def test_every_toml_block_in_readme_validates(tmp_path):
    readme = ROOT / "README.md"
    blocks = re.findall(r"```toml\n(.*?)```", readme.read_text(), re.S) if readme.exists() else []
    blocks = [b for b in blocks if not re.search(r"^\[(project|tool|build-system)", b, re.M)]
    assert blocks, "README.md should show a TOML configuration example"
    for i, block in enumerate(blocks):
        TaskQueueConfig.from_file(write(tmp_path, block, f"readme-{i}.toml"))


def test_docs_configuration_md_is_not_stale():
    result = subprocess.run(
        [sys.executable, "-m", "taskqueue.config.docs", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_docs_check_detects_staleness(tmp_path):
    from taskqueue.config import docs

    out = tmp_path / "configuration.md"
    assert docs.main(["--check", "--output", str(out)]) == 1
    assert docs.main(["--output", str(out)]) == 0
    assert docs.main(["--check", "--output", str(out)]) == 0
    text = out.read_text()
    for s in SETTINGS:
        assert s.env in text


def test_initial_count_zero_loads_for_web_only_mode(tmp_path, capsys):
    """The web-only file loads (task-worker web serves it); task-worker worker refuses it
    with exit 2 unless the autoscaler is on (then it starts at min_workers)."""
    from taskqueue.cli.worker import main

    path = write(tmp_path, "[workers]\ninitial_count = 0\n", "web.toml")
    assert TaskQueueConfig.from_file(path).workers.initial_count == 0
    assert main(["worker", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert "runs no workers" in err and "task-worker web" in err
    path = write(
        tmp_path, "[workers]\ninitial_count = 0\n[autoscaler]\nenabled = true\n", "ok.toml"
    )
    assert TaskQueueConfig.from_file(path).workers.initial_count == 0
