"""Every taskqueue setting, declared exactly once.

Duties:
1. Declare each setting (section, key, type, default, doc, validation, CLI flag, env aliases).
2. Derive from that one declaration the file key (``section.key``), the environment
   variable (``TASKQUEUE_<SECTION>__<KEY>``), the CLI flag and the allowed-values text.
3. Check one value against its declaration (``Setting.check``).
4. Add the flag-bearing settings to an ``argparse`` parser (``add_cli_flags``).

Loading, precedence and cross-setting rules live in ``loader.py``; docs in ``docs.py``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from taskqueue.keys import QUEUE_NAME_RE
from taskqueue.redact import redact_url
from taskqueue.redis_url import BadRedisUrl, parse_redis_url

ENV_PREFIX = "TASKQUEUE_"
_IDENT_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_TASK_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*")
_MODULE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*(:[A-Za-z_][A-Za-z0-9_.]*)?")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "compact", "pretty")
SECTION_ALIASES = {"actix": "web"}
TYPE_NAMES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "list of strings",
    tuple: "array",
    dict: "table",
}

Validator = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Setting:
    """One setting. ``validator`` returns None when the value is fine, else what is allowed."""

    section: str
    key: str
    type: type
    default: Any
    doc: str
    choices: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    validator: Validator | None = None
    cli: tuple[str, ...] | None = None
    env_aliases: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # older file key paths that load into this setting
    normalize: Callable[[Any], Any] | None = None
    secret: bool = False
    #: The test that fails if this setting stops doing what ``doc`` says (a pytest node id).
    proof: str = ""
    #: Temporary: the issue building this setting right now; its engineer replaces it by ``proof``.
    owner: str = ""

    @property
    def path(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.path.replace(".", "__").upper()

    @property
    def dest(self) -> str:
        """The argparse attribute name: ``workers.initial_count`` -> ``workers__initial_count``."""
        return self.path.replace(".", "__")

    @property
    def type_name(self) -> str:
        return TYPE_NAMES[self.type]

    def allowed(self) -> str:
        """Human description of the allowed values, used in errors and docs."""
        parts = [self.type_name]
        if self.choices:
            parts.append("one of " + ", ".join(self.choices))
        if self.min is not None and self.max is not None:
            parts.append(f"between {_num(self.min)} and {_num(self.max)}")
        elif self.min is not None:
            parts.append(f">= {_num(self.min)}")
        elif self.max is not None:
            parts.append(f"<= {_num(self.max)}")
        if self.validator is not None and self.validator.__doc__:
            parts.append(self.validator.__doc__.strip())
        return ", ".join(parts)

    def check(self, value: Any) -> str | None:
        """Return None if ``value`` (already of ``self.type``) is allowed, else ``allowed()``."""
        if self.choices is not None and value not in self.choices:
            return self.allowed()
        if self.min is not None and value < self.min:
            return self.allowed()
        if self.max is not None and value > self.max:
            return self.allowed()
        if self.validator is not None and self.validator(value) is not None:
            return self.allowed()
        return None

    def display(self, value: Any) -> Any:
        """The value as it may be shown in logs, errors and ``as_dict(redacted=True)``."""
        if self.secret:
            return "***" if value else value
        if self.key == "url" and isinstance(value, str):
            return redact_url(value)
        return value


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _redis_url(value: str) -> str | None:
    """a redis://, rediss://, unix://, redis+cluster://host:port[,host:port...] or
    redis+sentinel://host:port[,host:port...]/service[/db] URL (rediss+ for TLS)"""
    try:
        parse_redis_url(value)
    except BadRedisUrl as exc:
        return str(exc)
    return None if re.match(r"\S+$", value) else "bad url"


def _queue_list(value: list[str]) -> str | None:
    """at least one queue; each name matching [A-Za-z0-9_.:-]{1,128}"""
    ok = value and all(QUEUE_NAME_RE.fullmatch(q) for q in value)
    return None if ok else "bad queue name"


def _identifier(value: str) -> str | None:
    """matching [A-Za-z0-9_.:-]{1,64}"""
    return None if _IDENT_RE.fullmatch(value) else "bad identifier"


def _modules(value: list[str]) -> str | None:
    """dotted module paths such as myapp.tasks"""
    return None if all(_MODULE_RE.fullmatch(m) for m in value) else "bad module"


def _task_paths(value: list[str]) -> str | None:
    """`module:function` paths such as myapp.tasks:send_email"""
    return None if all(_TASK_RE.fullmatch(t) for t in value) else "bad task path"


def _route(value: str) -> str | None:
    """empty, or a path starting with / (no spaces, not ending with /)"""
    ok = value in ("", "/") or (value[:1] == "/" and " " not in value and value[-1] != "/")
    return None if ok else "bad route"


def _upper(value: str) -> str:
    return value.upper()


def _lower(value: str) -> str:
    return value.lower()


S = Setting
RATE = {"min": 0.0, "max": 1.0}
TRIG = "autoscaler.scaling_triggers"
SLA = "autoscaler.target_sla"

# fmt: off
SETTINGS: list[Setting] = [
    # [redis]
    S("redis", "url", str, "redis://127.0.0.1:6379", "Redis server URL; credentials in it are never logged.",
      validator=_redis_url, cli=("--redis-url", "-r"), env_aliases=("REDIS_URL",),
      proof="tests/test_master_settings.py::test_a_config_file_reaches_the_master_and_its_workers"),
    S("redis", "url_file", str, "",
      "File whose first line is the Redis URL; when set it replaces `url`. Keeps a password out of "
      "the process list and shell history: use it (mode 0600), or the environment "
      "(TASKQUEUE_REDIS__URL, REDIS_URL), rather than `-r redis://:password@...`.",
      cli=("--redis-url-file",),
      proof="tests/test_faults_redis.py::test_redis_url_file_keeps_the_password_out_of_the_process_list"),
    S("redis", "pool_size", int, 10,
      "Most connections one taskqueue process opens to Redis (on a cluster: to each node, for the "
      "sync and the asyncio client alike, plus the one redis-py keeps on a seed node to read the "
      "slot map); callers beyond it wait for a free one. At least 2: the supervisor keeps one for "
      "its control inbox.", min=2, max=10000,
      proof="tests/test_connection.py::test_the_master_keeps_to_its_pool_size"),
    S("redis", "connection_timeout", float, 5.0, "Seconds to wait for a TCP connection to Redis.", min=0.1, max=3600,
      proof="tests/test_connection.py::test_command_timeout_applies_to_every_command"),
    S("redis", "command_timeout", float, 5.0,
      "Seconds to wait for the reply to one Redis command, on every connection; a blocking wait "
      "(an idle worker's BLPOP, at most 10 s) gets its own length on top.", min=0.1, max=3600,
      proof="tests/test_connection.py::test_command_timeout_applies_to_every_command"),
    S("redis", "tls_ca_file", str, "",
      "PEM file of the CA that signed the Redis server's certificate (TLS URLs: rediss://, "
      "rediss+cluster://, rediss+sentinel://); empty: the system's CAs.",
      proof="tests/test_redis_urls.py::test_a_wrong_ca_says_which_setting_to_fix"),
    S("redis", "tls_cert_file", str, "", "PEM client certificate, for servers that require one "
      "(tls-auth-clients); needs tls_key_file.",
      proof="tests/test_redis_urls.py::test_tls_with_client_certificates"),
    S("redis", "tls_key_file", str, "", "PEM private key of tls_cert_file.",
      proof="tests/test_redis_urls.py::test_tls_with_client_certificates"),
    S("redis", "username", str, "",
      "ACL user of the Redis servers (every cluster node; under Sentinel the primary and "
      "replicas), for a URL without credentials.",
      proof="tests/test_sentinel_auth.py::test_an_authenticated_sentinel_set_follows_a_failover"),
    S("redis", "password", str, "",
      "Password of the Redis servers (requirepass, or redis.username's ACL password), for a URL "
      "without credentials; set it in the environment (TASKQUEUE_REDIS__PASSWORD) or the file. "
      "Never logged.", secret=True,
      proof="tests/test_sentinel_auth.py::test_an_authenticated_sentinel_set_follows_a_failover"),
    S("redis", "sentinel_username", str, "",
      "ACL user the Sentinels themselves require (redis+sentinel:// URLs only); the servers' "
      "own user is redis.username or the URL's.",
      proof="tests/test_sentinel_auth.py::test_an_authenticated_sentinel_set_follows_a_failover"),
    S("redis", "sentinel_password", str, "",
      "Password the Sentinels themselves require (their requirepass, or sentinel_username's ACL "
      "password; redis+sentinel:// URLs only). Never logged.", secret=True,
      proof="tests/test_sentinel_auth.py::test_an_authenticated_sentinel_set_follows_a_failover"),
    S("redis", "min_replicas_acked", int, 0,
      "Acknowledged enqueue: after each enqueue, wait (Redis WAIT) until this many replicas have "
      "the job, or fail the call with NotReplicated (the job is queued on the primary). On a "
      "cluster WAIT runs on the node that took the write (sync and asyncio clients). 0: off.",
      min=0, max=100, proof="tests/test_redis_urls.py::test_min_replicas_acked_waits_for_replicas"),
    S("redis", "replica_ack_timeout", float, 1.0,
      "Seconds an acknowledged enqueue waits for min_replicas_acked replicas.", min=0.001, max=600,
      proof="tests/test_redis_urls.py::test_min_replicas_acked_waits_for_replicas"),
    S("redis", "key_prefix", str, "tq", "Prefix of every Redis key taskqueue writes.", validator=_identifier,
      proof="tests/test_master_settings.py::test_a_config_file_reaches_the_master_and_its_workers"),
    S("redis", "namespace", str, "default", "Namespace inside the prefix, so several apps can share one Redis.",
      validator=_identifier,
      proof="tests/test_master_settings.py::test_a_config_file_reaches_the_master_and_its_workers"),
    # [workers]
    S("workers", "initial_count", int, 4,
      "Worker processes the supervisor starts with; with the autoscaler on, brought within "
      "min_workers..max_workers. 0 = web-only: the file loads for `task-worker web`, and "
      "`task-worker worker` starts at min_workers with the autoscaler on, else exits 2.",
      min=0, max=1024,
      cli=("--workers", "-w"),
      proof="tests/test_master_settings.py::test_a_config_file_reaches_the_master_and_its_workers"),
    S("workers", "max_concurrent_tasks", int, 10, "Jobs one worker process may run at the same time.",
      min=1, max=10000, cli=("--max-concurrent-tasks",),
      proof="tests/test_master_settings.py::test_a_config_file_reaches_the_master_and_its_workers"),
    S("workers", "heartbeat_interval", float, 1.0,
      "Seconds between two reports of a worker process to its supervisor (held jobs, progress); "
      "a worker silent for hung_timeout is killed, so hung_timeout must be longer.", min=0.1, max=3600,
      proof="tests/test_master_settings.py::test_a_config_file_reaches_the_master_and_its_workers"),
    S("workers", "shutdown_grace_period", float, 30.0,
      "Seconds a worker may spend finishing its jobs after SIGTERM before it is killed.", min=0, max=86400,
      cli=("--graceful-timeout",),
      proof="tests/test_master_signals.py::test_term_with_short_grace_puts_jobs_back_without_spending_an_attempt"),
    S("workers", "queues", list, ["high_priority", "default", "low_priority"],
      "Queues to consume, highest priority first (CLI: comma-separated).", validator=_queue_list,
      cli=("--queues", "-q"),
      proof="tests/test_master_settings.py::test_a_config_file_reaches_the_master_and_its_workers"),
    S("workers", "imports", list, [], "Modules imported at start-up to register tasks (CLI: repeatable).",
      validator=_modules, cli=("--import", "-i"),
      proof="tests/test_master_settings.py::test_a_config_file_reaches_the_master_and_its_workers"),
    S("workers", "tasks", list, [],
      "Tasks to register as `module:function` paths; with auto_register.enabled = false only these "
      "are registered (their modules are imported too).", validator=_task_paths,
      proof="tests/test_master_settings.py::test_auto_register_off_registers_only_the_listed_tasks"),
    S("workers", "max_tasks_per_child", int, 0, "Jobs after which a worker process is replaced; 0 = unlimited.",
      min=0, cli=("--max-tasks-per-child",),
      proof="tests/test_master_recycle.py::test_worker_recycled_after_max_tasks"),
    S("workers", "max_memory_per_child", int, 0,
      "Resident memory (MiB) above which a worker process is replaced after its job; 0 = unlimited.",
      min=0, cli=("--max-memory-per-child",),
      proof="tests/test_master_recycle.py::test_worker_recycled_at_its_memory_limit"),
    S("workers", "worker_prefix", str, "worker", "Prefix of worker ids (`<prefix>-<host>-<pid>`).",
      validator=_identifier, cli=("--worker-prefix",),
      proof="tests/test_master_settings.py::test_a_config_file_reaches_the_master_and_its_workers"),
    S("workers", "lease_seconds", float, 30.0,
      "Seconds a fetched job stays leased to its worker; the lease is extended while the job runs.",
      min=1, max=86400,
      proof="tests/test_master_settings.py::test_a_config_file_reaches_the_master_and_its_workers"),
    S("workers", "max_stalls", int, 3,
      "Times a job may lose its worker (crash, kill, expired lease) and be put back in its queue; "
      "the next loss moves it to the dead letter as a poison pill.", min=0,
      proof="tests/test_master_settings.py::test_a_config_file_reaches_the_master_and_its_workers"),
    S("workers", "hung_timeout", float, 60.0,
      "Seconds without a heartbeat after which the supervisor kills a worker process; 0 = never.", min=0,
      proof="tests/test_master_chaos.py::test_sigstopped_worker_is_killed_and_its_jobs_run_elsewhere"),
    # [autoscaler]
    S("autoscaler", "enabled", bool, False, "Let the supervisor grow and shrink the worker count.",
      cli=("--enable-autoscaler", "-a"),
      proof="tests/test_autoscaler_master.py::test_a_burst_takes_the_pool_from_min_to_max_and_back_with_every_job_run_once"),
    S("autoscaler", "min_workers", int, 1, "Fewest worker processes the autoscaler keeps (per supervisor).",
      min=1, max=1024, cli=("--autoscaler-min-workers",),
      proof="tests/test_autoscaler_master.py::test_a_burst_takes_the_pool_from_min_to_max_and_back_with_every_job_run_once"),
    S("autoscaler", "max_workers", int, 10, "Most worker processes the autoscaler starts (per supervisor).",
      min=1, max=1024, cli=("--autoscaler-max-workers",),
      proof="tests/test_autoscaler_core.py::test_step_scales_up_only_after_consecutive_signals_and_never_past_max"),
    S("autoscaler", "scale_up_count", int, 4,
      "Largest number of workers one scale-up adds; the step itself is sized in proportion to the "
      "pressure (ceil(workers x metric / threshold), as Kubernetes' HPA does).", min=1, max=1024,
      proof="tests/test_autoscaler_core.py::test_proportional_step_is_capped_by_scale_up_count"),
    S("autoscaler", "scale_down_count", int, 1,
      "Largest number of workers one scale-down retires (idle ones only, gracefully).", min=1, max=1024,
      proof="tests/test_autoscaler_core.py::test_idle_scales_down_to_min_only_after_its_cooldown"),
    S("autoscaler", "sample_interval", float, 5.0,
      "Seconds between two autoscaler samples (one read of the metrics snapshot each).", min=0.2,
      max=300,
      proof="tests/test_autoscaler_core.py::test_policy_reads_every_autoscaler_setting_from_the_config"),
    S("autoscaler", "scale_up_threshold", float, 5.0,
      "Older flat key: waiting jobs per worker above which the autoscaler adds workers.", min=0,
      cli=("--autoscaler-scale-up-threshold",),
      proof="tests/test_autoscaler_core.py::test_old_flat_thresholds_keep_working"),
    S("autoscaler", "scale_down_threshold", float, 1.0,
      "Older flat key: waiting jobs per worker below which the autoscaler may remove workers "
      "(when utilization allows it too).", min=0,
      proof="tests/test_autoscaler_core.py::test_old_flat_thresholds_keep_working"),
    # [autoscaler.scaling_triggers]
    S(TRIG, "queue_pressure_threshold", float, 0.75,
      "Waiting jobs per worker, weighted by queue priority (first queue 1.5x ... last 0.5x), above which "
      "the autoscaler scales up.", min=0,
      proof="tests/test_autoscaler_core.py::test_proportional_step_is_capped_by_scale_up_count"),
    S(TRIG, "worker_utilization_threshold", float, 0.80,
      "Busy fraction of the job slots above which the autoscaler scales up.", **RATE,
      proof="tests/test_autoscaler_core.py::test_utilization_above_its_threshold_scales_up_toward_the_target"),
    S(TRIG, "task_complexity_threshold", float, 1.5,
      "Ratio of the last minute's mean run time to its baseline (a 10-minute moving average) above which a "
      "loaded pool scales up.", min=0,
      proof="tests/test_autoscaler_core.py::test_task_complexity_scales_a_loaded_pool_only"),
    S(TRIG, "error_rate_threshold", float, 0.05,
      "Share of the last minute's jobs that failed above which scale-up is held back (more workers do "
      "not fix a failing dependency).", **RATE,
      proof="tests/test_autoscaler_core.py::test_high_error_rate_alone_never_scales_up"),
    S(TRIG, "memory_pressure_threshold", float, 512.0,
      "Mean unique memory (USS, MiB) per worker above which scale-up is held back and, instead, the "
      "worker using the most (an idle one first) is replaced gracefully, once per scale-up cooldown; "
      "0 = off.", min=0,
      proof="tests/test_autoscaler_master.py::test_memory_pressure_recycles_the_largest_worker_instead_of_scaling_up"),
    S(TRIG, "enable_adaptive_thresholds", bool, False,
      "Move the thresholds toward the [autoscaler.target_sla] targets, once per adaptation window, "
      "each within half to twice its configured value.",
      proof="tests/test_autoscaler_core.py::test_adaptive_thresholds_converge_toward_the_sla_and_stay_in_bounds"),
    S(TRIG, "learning_rate", float, 0.1, "Fraction by which one adaptive step moves the thresholds.", **RATE,
      proof="tests/test_autoscaler_core.py::test_adaptation_judges_latency_and_success_against_their_targets"),
    S(TRIG, "adaptation_window_minutes", int, 30,
      "Minutes of samples one adaptive step judges against the SLA targets.", min=1,
      proof="tests/test_autoscaler_core.py::test_adaptive_thresholds_converge_toward_the_sla_and_stay_in_bounds"),
    S(TRIG, "scale_up_cooldown_seconds", float, 60.0,
      "Seconds after a scaling step before the next scale-up; a scale-up also keeps the other "
      "supervisors of the namespace from scaling up for this long.", min=0, aliases=("autoscaler.scale_up_cooldown",),
      proof="tests/test_autoscaler_master.py::test_two_masters_share_one_burst"),
    S(TRIG, "scale_down_cooldown_seconds", float, 300.0,
      "Seconds after a scaling step before the next scale-down; a scale-down also keeps the other "
      "supervisors of the namespace from scaling down for this long.", min=0,
      aliases=("autoscaler.scale_down_cooldown",),
      proof="tests/test_autoscaler_core.py::test_idle_scales_down_to_min_only_after_its_cooldown"),
    S(TRIG, "consecutive_signals_required", int, 2,
      "Consecutive samples with the same scaling signal needed before a step.",
      min=1, max=1000, cli=("--autoscaler-consecutive-signals",),
      proof="tests/test_autoscaler_core.py::test_step_scales_up_only_after_consecutive_signals_and_never_past_max"),
    # [autoscaler.target_sla]
    S(SLA, "max_p95_latency_ms", float, 5000.0,
      "Target 95th percentile latency (queue wait + run time, ms) adaptive tuning steers toward.", min=0,
      proof="tests/test_autoscaler_core.py::test_adaptation_judges_latency_and_success_against_their_targets"),
    S(SLA, "min_success_rate", float, 0.95,
      "Target share of jobs that succeed; the error-rate threshold moves toward 1 - this.", **RATE,
      proof="tests/test_autoscaler_core.py::test_adaptation_judges_latency_and_success_against_their_targets"),
    S(SLA, "max_queue_wait_time_ms", float, 10000.0,
      "Target 95th percentile queue wait (ms) adaptive tuning steers toward.", min=0,
      proof="tests/test_autoscaler_core.py::test_adaptive_thresholds_converge_toward_the_sla_and_stay_in_bounds"),
    S(SLA, "target_worker_utilization", float, 0.70,
      "Busy fraction of the job slots the autoscaler sizes the pool for (scale-up and scale-down).",
      **RATE,
      proof="tests/test_autoscaler_core.py::test_scale_down_keeps_utilization_under_target_and_retires_only_idle_workers"),
    # [scheduler], [auto_register]
    S("scheduler", "enabled", bool, False,
      "Run the scheduler: move delayed jobs to their queues, and fire the periodic schedules "
      "(`@periodic`, `[[schedules]]`; each slot once, however many masters run it).",
      cli=("--enable-scheduler", "-s"),
      proof="tests/test_master_periodic.py::test_three_masters_fire_each_slot_of_an_every_second_schedule_exactly_once"),
    S("scheduler", "tick_interval", float, 1.0,
      "Seconds between two scheduler polls for due delayed jobs (periodic schedules need no "
      "polling: the scheduler sleeps until the next slot).", min=0.05, max=3600,
      proof="tests/test_master_periodic.py::test_tick_interval_paces_the_masters_promotion_of_delayed_jobs"),
    S("scheduler", "misfire_grace", float, 60.0,
      "Seconds a periodic slot may be late and still fire on its own; older slots are misfires, "
      "handled by each schedule's `misfire` policy.", min=0, max=86400,
      proof="tests/test_master_periodic.py::test_misfire_policies_after_every_master_was_down_for_10_seconds"),
    S("auto_register", "enabled", bool, True,
      "Register every task decorated with @task when its module is imported; false: only the tasks "
      "named in workers.tasks.",
      proof="tests/test_master_settings.py::test_auto_register_off_registers_only_the_listed_tasks"),
    # [web] (alias [actix])
    S("web", "enabled", bool, False,
      "Let `task-worker worker` serve the HTTP API from a supervised child process (respawned like a "
      "worker) on `bind`:`port`; `task-worker worker --http ADDR:PORT` turns it on too.",
      proof="tests/test_web_child.py::test_the_http_child_serves_is_respawned_after_sigkill_and_stops_with_the_pool"),
    S("web", "auto_configure_routes", bool, True,
      "Let `task-worker web` and the worker's HTTP child serve the API; false refuses to start them "
      "(the routes are then only served where your own app mounts `taskqueue.web.create_app`).",
      proof="tests/test_web.py::test_settings_turn_routes_off"),
    S("web", "route_prefix", str, "/tasks",
      "URL prefix of the HTTP routes (`/tasks/health`); empty when your app mounts the API under a "
      "path of its own.", validator=_route,
      proof="tests/test_web.py::test_settings_turn_routes_off"),
    S("web", "enable_metrics", bool, True,
      "Serve the metrics routes (`/metrics...`, `/stats`, `/sla`) and Prometheus; false: 404.",
      proof="tests/test_web.py::test_settings_turn_routes_off"),
    S("web", "enable_health_check", bool, True, "Serve `/health`; false: 404.",
      proof="tests/test_web.py::test_settings_turn_routes_off"),
    S("web", "bind", str, "127.0.0.1", "Address the HTTP server listens on (loopback by default).",
      cli=("--bind",),
      proof="tests/test_web_child.py::test_the_http_child_serves_is_respawned_after_sigkill_and_stops_with_the_pool"),
    S("web", "port", int, 3000, "Port the HTTP server listens on.", min=1, max=65535, cli=("--port",),
      proof="tests/test_web.py::test_every_endpoint_answers_with_the_numbers_of_the_jobs_run"),
    S("web", "token", str, "",
      "Bearer token the HTTP write actions (retry, delete, pause, resume, purge, scale) require; "
      "empty = write actions disabled. Never logged.", secret=True,
      proof="tests/test_web.py::test_writes_need_the_token_and_a_refused_write_changes_nothing"),
    # [metrics]
    S("metrics", "enabled", bool, True,
      "Export metrics: the HTTP metrics routes, Prometheus and the `performance_metric` log records; "
      "false: none of them (the scripts' counters are kept regardless).",
      proof="tests/test_web.py::test_settings_turn_routes_off"),
    S("metrics", "export_interval", float, 60.0,
      "Seconds between two `performance_metric` log records of a worker process (with "
      "`logging.enable_performance_monitoring`; Prometheus is scraped, never pushed).",
      min=0.1, max=86400,
      proof="tests/test_perf_metrics.py::test_performance_metric_records_appear"),
    S("metrics", "collect_scaling_metrics", bool, True,
      "Serve the autoscaler's state (`/metrics/autoscaler`, the `autoscaler` key of `/metrics`).",
      proof="tests/test_web.py::test_settings_turn_routes_off"),
    S("metrics", "collect_sla_metrics", bool, True,
      "Serve the SLA status against `[autoscaler.target_sla]` (`/sla`, `sla_metrics` of `/health`, "
      "the `taskqueue_sla_*` gauges).",
      proof="tests/test_web.py::test_settings_turn_routes_off"),
    S("metrics", "collect_adaptive_threshold_metrics", bool, False,
      "Include the autoscaler's adapted thresholds in its state as the API serves it.",
      proof="tests/test_web.py::test_adaptive_thresholds_are_served_only_when_asked"),
    # [logging]
    S("logging", "level", str, "INFO", "Log level (case-insensitive); TRACE logs below DEBUG, WARN = WARNING.", choices=LOG_LEVELS,
      cli=("--log-level",), env_aliases=("LOG_LEVEL",), normalize=_upper,
      proof="tests/test_logs.py::test_configure_from_env"),
    S("logging", "format", str, "compact", "Log line format.", choices=LOG_FORMATS, cli=("--log-format",),
      env_aliases=("LOG_FORMAT",), normalize=_lower,
      proof="tests/test_logs.py::test_configure_from_config"),
    S("logging", "enable_task_lifecycle", bool, True, "Log every job lifecycle event (started, succeeded, ...).",
      proof="tests/test_logs.py::test_configure_from_env"),
    S("logging", "enable_performance_monitoring", bool, False,
      "Each worker process logs a `performance_metric` record every `metrics.export_interval` seconds: "
      "throughput, run and wait time percentiles, slot utilisation.",
      proof="tests/test_perf_metrics.py::test_performance_metric_records_appear"),
    S("logging", "enable_error_chain_analysis", bool, True, "Attach the exception chain (`error_chain`: type and message of each cause) to failure records.",
      proof="tests/test_worker_logs.py::test_error_chain_switch"),
    # [alerts]
    S("alerts", "max_queue_pressure_score", float, 2.0, "Alert when waiting jobs, weighted by queue priority, per live worker process exceed this.", min=0,
      proof="tests/test_web.py::test_alert_settings_reach_the_rules"),
    S("alerts", "min_worker_utilization", float, 0.10, "Alert (info) when the busy fraction of the live workers' job slots is below this.",
      **RATE,
      proof="tests/test_web.py::test_alert_settings_reach_the_rules"),
    S("alerts", "max_worker_utilization", float, 0.95, "Alert (warning) when the busy fraction of the live workers' job slots is above this.", **RATE,
      proof="tests/test_web.py::test_alert_settings_reach_the_rules"),
    S("alerts", "max_scaling_frequency_per_hour", int, 10, "Alert when a master's autoscaler applies more scaling steps than this within an hour.", min=0,
      proof="tests/test_alerts_sla.py::test_thresholds_raise_their_alerts"),
    # [limits]
    S("limits", "max_payload_bytes", int, 1024 * 1024, "Largest encoded job payload accepted by enqueue.",
      min=1024, max=512 * 1024 * 1024,
      proof="tests/test_settings.py::test_max_payload_bytes_is_the_enqueue_limit"),
]
# fmt: on


# [[schedules]]: an array of tables, one periodic job each (taskqueue/schedules/). The fields
# have no environment variable or flag; cross-field rules are checked by ``_schedule_entry``.
def _cron(value: str) -> str | None:
    """a 5-field cron expression (minute hour day-of-month month day-of-week)"""
    from taskqueue.schedules.spec import cron_problem

    return cron_problem(value)


def _timezone(value: str) -> str | None:
    """an IANA timezone name such as Europe/Paris"""
    from taskqueue.schedules.spec import tz_problem

    return tz_problem(value)


def _schedule_name(value: str) -> str | None:
    """matching [A-Za-z0-9_.:-]{1,128}"""
    return None if QUEUE_NAME_RE.fullmatch(value) else "bad name"


def _queue_name(value: str) -> str | None:
    """matching [A-Za-z0-9_.:-]{1,128}"""
    return None if QUEUE_NAME_RE.fullmatch(value) else "bad queue name"


def _schedule_entry(entry: dict[str, Any]) -> list[str]:
    """Problems of one [[schedules]] entry as a whole (fields already checked one by one)."""
    from taskqueue.schedules.spec import make_spec

    if entry.get("task") is None:
        return ["task is required: the name of the registered task to run"]
    try:
        make_spec(entry.get("cron"), entry.get("every"), entry.get("tz"))
    except ValueError as exc:
        return [str(exc)]
    return []


@dataclass(frozen=True)
class TableArray:
    """An array of tables (``[[name]]`` in TOML, a list of mappings in YAML), same fields each.

    A field whose default is None is optional and absent unless given; ``check`` returns the
    problems of one whole entry."""

    name: str
    doc: str
    fields: tuple[Setting, ...]
    check: Callable[[dict[str, Any]], list[str]]
    unique: str  # the field whose value must differ between entries (after ``default_from``)
    default_from: tuple[str, str]  # (field, other field it defaults to when absent)


SCHEDULE = "schedules"
# fmt: off
TABLE_ARRAYS: dict[str, TableArray] = {SCHEDULE: TableArray(
    SCHEDULE,
    "Periodic jobs fired by the masters started with `--enable-scheduler`, each slot exactly once "
    "however many there are. Give exactly one of `cron` and `every`. A schedule naming a task "
    "that the master does not register is refused at start; schedules declared in code with "
    "`@periodic` are added to these, and any other schedule found in Redis is removed.",
    (
        S(SCHEDULE, "name", str, None, "Schedule name, unique; default: the task name.",
          validator=_schedule_name),
        S(SCHEDULE, "task", str, None, "Name of the registered task to run (required)."),
        S(SCHEDULE, "args", tuple, [], "Positional arguments of every job."),
        S(SCHEDULE, "kwargs", dict, {}, "Keyword arguments of every job."),
        S(SCHEDULE, "cron", str, None, "When to fire, as a cron expression evaluated in `tz`.",
          validator=_cron),
        S(SCHEDULE, "every", float, None, "When to fire, as an interval in seconds (slots aligned "
          "on the Unix epoch).", min=1),
        S(SCHEDULE, "tz", str, None, "Timezone of `cron` (default UTC); not allowed with `every`.",
          validator=_timezone),
        S(SCHEDULE, "queue", str, None, "Queue of the jobs; default: the task's queue.",
          validator=_queue_name),
        S(SCHEDULE, "misfire", str, "run_once", "After downtime longer than "
          "`scheduler.misfire_grace`: `run_once` fires one catch-up job for all missed slots, "
          "`skip` fires none of them.", choices=("run_once", "skip")),
    ),
    _schedule_entry, "name", ("name", "task"),
)}
# fmt: on

BY_PATH: dict[str, Setting] = {s.path: s for s in SETTINGS}
ALIAS_PATHS: dict[str, Setting] = {a: s for s in SETTINGS for a in s.aliases}
SECTIONS: list[str] = list(dict.fromkeys(s.section for s in SETTINGS))


_METAVARS = {int: "N", float: "NUM"}


def add_cli_flags(parser: argparse.ArgumentParser, sections: Iterable[str] | None = None) -> None:
    """Add every flag-bearing setting (of ``sections`` only, if given) to ``parser``; flags not
    given are absent from the result.

    The attribute name is ``Setting.dest`` (``workers.initial_count`` -> ``workers__initial_count``).
    Values stay strings (lists: one string per occurrence); ``TaskQueueConfig.load`` parses them.
    """
    only = set(sections) if sections is not None else None
    for s in SETTINGS:
        if not s.cli or (only is not None and s.section not in only):
            continue
        help_text = f"{s.doc} [{s.path}; env {s.env}]".replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": s.dest, "default": argparse.SUPPRESS, "help": help_text}
        if s.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif s.type is list:
            kwargs.update(action="append", metavar=s.key.upper().rstrip("S"))
        else:
            kwargs["metavar"] = _METAVARS.get(s.type, s.key.upper())
            if s.choices is not None:
                kwargs["metavar"] = "{" + ",".join(s.choices) + "}"
        parser.add_argument(*s.cli, **kwargs)
