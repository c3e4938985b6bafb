"""aioworker: an asyncio worker runtime on Redis.

Reliable (leased) fetch, retries with backoff, dead letters, delayed jobs, results,
deploy-safe shutdown with checkpoints, and keys that work on Redis Cluster.
"""

from .backoff import Backoff
from .batches import Batch, BatchOutcome, BatchProgress
from .client import Client
from .context import JobContext
from .cron import CronTick, ScheduleInfo, tick_of
from .errors import (
    AioworkerError,
    BatchCancelled,
    BatchError,
    BatchNotFound,
    BatchSealed,
    BrokerBusy,
    BrokerUnavailable,
    ConfigError,
    CronExpressionError,
    DuplicateJob,
    EnqueueError,
    ImportStringError,
    JobCancelled,
    JobDead,
    JobFailed,
    JobNotFound,
    LeadershipLost,
    LeaseLost,
    MissingDependency,
    PayloadError,
    PayloadTooLarge,
    RateLimited,
    RedisAccessDenied,
    RedisRefused,
    ResultTimeout,
    Retry,
    UnknownScheduleError,
    UnknownTaskError,
    UnsupportedServer,
    WorkerUnhealthy,
)
from .groups import GroupProgress, GroupRateLimit, Groups
from .handle import JobHandle
from .job import JobInfo, JobSpec, JobStatus
from .leader import Leadership
from .limits import GCRA, Admission, Bucket, Concurrent, Points, Window
from .task import Task
from .unique import Debounce, Throttle, Unique
from .worker import Worker

__version__ = "0.1.0"

__all__ = (
    "GCRA",
    "Admission",
    "AioworkerError",
    "Backoff",
    "Batch",
    "BatchCancelled",
    "BatchError",
    "BatchNotFound",
    "BatchOutcome",
    "BatchProgress",
    "BatchSealed",
    "BrokerBusy",
    "BrokerUnavailable",
    "Bucket",
    "Client",
    "Concurrent",
    "ConfigError",
    "CronExpressionError",
    "CronTick",
    "Debounce",
    "DuplicateJob",
    "EnqueueError",
    "GroupProgress",
    "GroupRateLimit",
    "Groups",
    "ImportStringError",
    "JobCancelled",
    "JobContext",
    "JobDead",
    "JobFailed",
    "JobHandle",
    "JobInfo",
    "JobNotFound",
    "JobSpec",
    "JobStatus",
    "Leadership",
    "LeadershipLost",
    "LeaseLost",
    "MissingDependency",
    "PayloadError",
    "PayloadTooLarge",
    "Points",
    "RateLimited",
    "RedisAccessDenied",
    "RedisRefused",
    "ResultTimeout",
    "Retry",
    "ScheduleInfo",
    "Task",
    "Throttle",
    "Unique",
    "UnknownScheduleError",
    "UnknownTaskError",
    "UnsupportedServer",
    "Window",
    "Worker",
    "WorkerUnhealthy",
    "__version__",
    "tick_of",
)
