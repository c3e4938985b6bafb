"""Exceptions raised by aioworker.

The tree::

    AioworkerError                 base of everything raised by this library
    ├── ConfigError                bad configuration: names, options, import strings
    │   ├── ImportStringError      ``module:attr`` could not be loaded (see its ``kind``)
    │   ├── MissingDependency      an optional feature's package is not installed
    │   ├── CronExpressionError    a cron expression that cannot be parsed (names the field)
    │   └── RedisRefused           Redis refuses a command for good: a missing ACL permission
    │       │                      (NOPERM) or an unknown command (names which)
    │       └── RedisAccessDenied  found at start-up: the ACL user may not run a command we need
    ├── EnqueueError               a job could not be enqueued as asked
    │   ├── UnknownTaskError       no task of that name is registered
    │   ├── PayloadError           arguments orjson cannot encode
    │   ├── PayloadTooLarge        encoded arguments exceed ``max_payload_bytes``
    │   └── DuplicateJob           a unique job's key is held by another job (only with
    │                              ``on_duplicate="raise"``; ``.job_id`` is the holder)
    ├── BrokerUnavailable          Redis cannot be reached (URL shown, password masked)
    │   ├── BrokerBusy             Redis answered "not now" (READONLY, OOM, BUSY, LOADING,
    │   │                          CLUSTERDOWN, ...): the same call may succeed later
    │   └── UnsupportedServer      a server older than Redis 6.2 / Valkey 7.2
    ├── WorkerUnhealthy            a worker loop kept failing past ``loop_exit_after``
    ├── JobNotFound                no job with that id (never existed, or its result expired)
    ├── ResultTimeout              ``Job.result(timeout=...)`` gave up waiting
    ├── UnknownScheduleError       no periodic schedule of that name is registered
    ├── LeadershipLost             a leadership's lease was lost while its body ran
    ├── LeaseLost                  a job's lease was lost: its checkpoint, step or cursor
    │                              was not saved (another worker may be running it)
    ├── RateLimited                a limiter did not admit within ``max_wait`` (or a job
    │                              was deferred by its limiter longer than ``rate_max_wait``)
    ├── BatchError                 a batch cannot do what was asked
    │   ├── BatchNotFound          no batch with that id (never created, or it expired)
    │   ├── BatchSealed            new children for a sealed batch from outside the batch
    │   └── BatchCancelled         the batch was cancelled
    └── JobFailed                  the job failed for good; ``.error`` holds its last error
        ├── JobDead                it was dead-lettered (attempts exhausted or bad input)
        └── JobCancelled           an operator cancelled it (``aioworker cancel``)

Raised *by jobs* to steer the worker (not errors of the library):

    Retry(delay=...)               ask for another attempt after ``delay`` seconds

Raised *by gates* (:class:`~aioworker.extensions.Gate`) to steer the worker:

    Skip(reason)                   finish the job without running it (a child of a
                                   cancelled batch)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

__all__ = (
    "AioworkerError",
    "BatchCancelled",
    "BatchError",
    "BatchNotFound",
    "BatchSealed",
    "BrokerBusy",
    "BrokerUnavailable",
    "ConfigError",
    "CronExpressionError",
    "DuplicateJob",
    "EnqueueError",
    "ImportStringError",
    "JobCancelled",
    "JobDead",
    "JobFailed",
    "JobNotFound",
    "LeadershipLost",
    "LeaseLost",
    "MissingDependency",
    "PayloadError",
    "PayloadTooLarge",
    "RateLimited",
    "RedisAccessDenied",
    "RedisRefused",
    "ResultTimeout",
    "Retry",
    "Skip",
    "UnknownScheduleError",
    "UnknownTaskError",
    "UnsupportedServer",
    "WorkerUnhealthy",
)


class AioworkerError(Exception):
    """Base class of every error raised by aioworker."""


class ConfigError(AioworkerError, ValueError):
    """Configuration that cannot work (bad names, options or import strings)."""


ImportKind = Literal["format", "module_missing", "import_failed", "attribute_missing", "not_worker"]


class ImportStringError(ConfigError):
    """An ``module:attribute`` import string could not be resolved.

    :param kind: ``format``, ``module_missing``, ``import_failed``, ``attribute_missing``
        or ``not_worker``.
    """

    def __init__(self, message: str, kind: ImportKind) -> None:
        super().__init__(message)
        self.kind: ImportKind = kind


class MissingDependency(ConfigError, ImportError):
    """An optional feature needs a package that is not installed; the message names the
    ``pip install`` command."""


class CronExpressionError(ConfigError):
    """A cron expression could not be parsed; the message names the field and the reason."""


class RedisRefused(ConfigError):
    """Redis refuses a command and will go on refusing it: the ACL user lacks a
    permission (``NOPERM``) or the server does not know the command; the message names
    which."""


class EnqueueError(AioworkerError):
    """A job could not be enqueued as asked."""


class UnknownTaskError(EnqueueError, LookupError):
    """No task of that name is registered with the worker."""


class PayloadError(EnqueueError, TypeError):
    """The job's arguments cannot be encoded as JSON by orjson."""


class PayloadTooLarge(EnqueueError):
    """The encoded arguments are larger than the configured maximum."""


class DuplicateJob(EnqueueError):
    """A unique job was not enqueued: another job holds its key (``on_duplicate="raise"``).

    :param key: the unique key.
    :param job_id: the job holding it.
    :param queue: the queue of both.
    :ivar handles: from ``enqueue_many``, the handles of the whole batch (the others
        were enqueued), the duplicate's being the holder's.
    """

    def __init__(self, key: str, job_id: str, queue: str) -> None:
        self.key = key
        self.job_id = job_id
        self.queue = queue
        self.handles: list[Any] = []
        super().__init__(f"unique key {key!r} of queue {queue!r} is held by job {job_id}")


class BrokerUnavailable(AioworkerError, ConnectionError):
    """Redis could not be reached."""


class BrokerBusy(BrokerUnavailable):
    """Redis answered but cannot serve the request now (``READONLY`` after a failover,
    ``OOM`` at maxmemory, ``BUSY``, ``LOADING``, ``CLUSTERDOWN``, ...); the same call may
    succeed later.

    :param code: the Redis error code, e.g. ``"READONLY"``.
    """

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class WorkerUnhealthy(AioworkerError):
    """A worker loop kept failing for longer than ``loop_exit_after``: the worker drained
    and stopped so that its orchestrator replaces it."""


class JobNotFound(AioworkerError, LookupError):
    """No job with that id is known (it never existed, or its result expired)."""


class ResultTimeout(AioworkerError, TimeoutError):
    """Waiting for a job's result took longer than the given timeout."""


class UnknownScheduleError(AioworkerError, LookupError):
    """No periodic schedule of that name is registered with the worker."""


class LeadershipLost(AioworkerError):
    """The lease of a leadership was lost (another process may lead now).

    Raised out of ``async with worker.leader(...)`` when the body was cancelled because
    the lease could not be renewed in time or was taken over.
    """


class LeaseLost(AioworkerError):
    """This worker no longer holds the job's lease: another worker may be running it.

    Raised by :class:`~aioworker.JobContext` when a checkpoint, a step or an iteration
    cursor could not be saved because the lease fencing it was lost.
    """


class RateLimited(AioworkerError):
    """A limiter did not admit the caller in time.

    :param limiter: the limiter's name (with its key, for keyed limiters).
    :param retry_after_s: when the limiter expected a slot for this caller.
    :param waited_s: how long the caller waited.
    """

    def __init__(self, limiter: str, retry_after_s: float, waited_s: float) -> None:
        self.limiter = limiter
        self.retry_after_s = retry_after_s
        self.waited_s = waited_s
        super().__init__(
            f"limiter {limiter!r} did not admit within {waited_s:.3f} s "
            f"(next slot expected in {retry_after_s:.3f} s)"
        )


class JobFailed(AioworkerError):
    """The job failed for good.

    :param job_id: the failed job.
    :param error: its last error as recorded by the worker (``type``, ``message``,
        ``traceback`` keys).
    """

    def __init__(self, job_id: str, error: dict[str, Any]) -> None:
        self.job_id = job_id
        self.error = error
        super().__init__(f"job {job_id} failed: {error.get('type')}: {error.get('message')}")


class JobDead(JobFailed):
    """The job was dead-lettered: its attempts ran out, or it could not run at all."""


class JobCancelled(JobFailed):
    """An operator cancelled the job before it finished (``aioworker cancel``)."""


class BatchError(AioworkerError):
    """A batch cannot do what was asked."""


class BatchNotFound(BatchError, LookupError):
    """No batch with that id: never created, or its keys expired."""


class BatchSealed(BatchError):
    """New children for a sealed batch, from outside the batch.

    Once sealed, a batch takes new children only from its own jobs that are still running
    (``ctx.batch.add(...)``), so its callbacks never fire before every child was added.
    """


class BatchCancelled(BatchError):
    """The batch was cancelled: it takes no new children."""


class Skip(Exception):
    """Raise in :meth:`Gate.enter` to finish a job without running it.

    The job completes with the result ``None`` and is never retried.

    :param reason: why, for the log line.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Retry(Exception):
    """Raise inside a job to have it retried after ``delay`` seconds.

    It counts as an attempt: when the job has no attempts left it is dead-lettered.

    :param delay: seconds (or a timedelta) to wait before the next attempt; ``None`` uses
        the task's backoff.
    """

    def __init__(self, delay: float | timedelta | None = None, reason: str = "") -> None:
        self.delay = delay
        self.reason = reason
        super().__init__(reason or "retry requested")


class UnsupportedServer(BrokerUnavailable):
    """The Redis server is too old for aioworker (it needs Redis 6.2+ or Valkey 7.2+)."""


class RedisAccessDenied(RedisRefused):
    """The start-up check found that the Redis user may not run a command aioworker
    needs (the message names it)."""
