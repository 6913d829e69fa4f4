"""One exception tree for taskqueue: every error a user can catch derives from TaskQueueError."""

from __future__ import annotations


class TaskQueueError(Exception):
    """Root of every error raised by taskqueue."""


class ConfigError(TaskQueueError):
    """A setting is missing, mistyped, out of range or unknown."""


class BrokerError(TaskQueueError):
    """Redis refused an operation or answered something unexpected."""


class RedisUnavailable(BrokerError):
    """Redis cannot serve the operation now (connection lost, out of memory, loading, busy,
    read-only): nothing was changed by it; retrying later is safe."""


class RedisRefused(BrokerError):
    """Redis refused the credentials or the permission (wrong password, ACL): fix the setting."""


class PartialEnqueue(BrokerError):
    """``enqueue_many`` committed some batches and not others: ``enqueued`` ids went in (retry
    only ``not_enqueued``), ``error`` is why the rest did not."""

    def __init__(self, enqueued: list[str], not_enqueued: list[str], error: BaseException):
        self.enqueued = enqueued
        self.not_enqueued = not_enqueued
        self.error = error
        super().__init__(
            f"{len(enqueued)} job(s) enqueued, {len(not_enqueued)} not ({error}); "
            "retry only the ones in .not_enqueued"
        )


class EnqueueError(TaskQueueError):
    """A job could not be enqueued: bad arguments, queue name, task name or size."""


class InvalidOption(EnqueueError, ValueError):
    """A job or task option has a wrong type or an out-of-range value (the message names it)."""


class NotReplicated(EnqueueError):
    """An acknowledged enqueue (``[redis] min_replicas_acked``) reached fewer replicas than
    asked within ``replica_ack_timeout``. The jobs ARE queued on the primary; only a failover
    before replication catches up could lose them. Enqueue again with the same idempotency key
    to be sure: it returns the existing job instead of a second one."""

    def __init__(self, job_ids: list[str], acked: int, wanted: int, timeout: float):
        self.job_ids = job_ids
        self.acked = acked
        self.wanted = wanted
        shown = ", ".join(job_ids[:5]) + (" ..." if len(job_ids) > 5 else "")
        super().__init__(
            f"enqueue of {len(job_ids)} job(s) ({shown}) reached {acked} of {wanted} replica(s) "
            f"in {timeout:g}s: queued on the primary, not yet safe from a failover; enqueue "
            "again with the same idempotency key to be sure, or check the replicas"
        )


class UnknownTask(EnqueueError):
    """No task is registered under the given name."""


class InvalidQueueName(EnqueueError):
    """A queue name does not match ``[A-Za-z0-9_.:-]{1,128}``."""


class PayloadTooLarge(EnqueueError):
    """The encoded job payload exceeds the configured limit."""


class SerializationError(EnqueueError):
    """Arguments or a result could not be encoded as MessagePack."""


class NoDefaultClient(TaskQueueError):
    """``task.delay()`` was called before ``set_default`` or ``TaskQueue.from_config``."""


class RegistryError(TaskQueueError):
    """Two different tasks were registered under one name."""


class TaskFailed(TaskQueueError):
    """A job ended without success; carries the remote error and its state."""

    def __init__(self, job_id: str, state: str, error: str | None, traceback: str | None = None):
        self.job_id = job_id
        self.state = state
        self.error = error
        self.traceback = traceback
        super().__init__(f"job {job_id} {state}: {error}")


class JobNotFound(TaskQueueError):
    """No job with this id exists (never enqueued, or its record expired)."""


class Retry(Exception):  # noqa: N818 - a control-flow signal raised by task code
    """Raise inside a task to ask for a retry, optionally after ``delay`` seconds."""

    def __init__(self, delay: float | None = None, reason: str = "retry requested"):
        self.delay = delay
        self.reason = reason
        super().__init__(reason)


class SoftTimeLimitExceeded(Exception):  # noqa: N818 - the name users know from Celery
    """Raised inside a sync task's thread when its time limit passes; catch it to clean up.
    A task that keeps running anyway has its worker process replaced by the master."""


class Reject(Exception):  # noqa: N818 - a control-flow signal raised by task code
    """Raise inside a task to send the job straight to the dead letter, without retries."""
