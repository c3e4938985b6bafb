"""What the inspection tools return: plain frozen dataclasses, and :func:`to_jsonable`
to turn them into JSON-ready data (the queries are in :mod:`aioworker.inspect`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from .job import JobStatus
from .skipped import SkippedQueue

__all__ = (
    "STATES",
    "JobDetail",
    "JobPage",
    "JobSummary",
    "QueueStats",
    "State",
    "Survey",
    "WorkerInfo",
    "to_jsonable",
)

State = Literal["ready", "scheduled", "running", "dead"]
STATES: tuple[State, ...] = ("ready", "scheduled", "running", "dead")


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts of one queue at one moment.

    :ivar due: scheduled jobs whose time has come (ready at the next fetch).
    :ivar expired: running jobs whose worker stopped renewing the lease (recovered soon).
    :ivar cancel_requests: running jobs with a pending cancel request.
    """

    name: str
    ready: int
    scheduled: int
    running: int
    dead: int
    paused: bool
    paused_at: datetime | None
    due: int
    expired: int
    cancel_requests: int


@dataclass(frozen=True, slots=True)
class Survey:
    """Counts of the queues that could be read, and the ones left out."""

    queues: list[QueueStats]
    skipped: list[SkippedQueue]


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A live worker as it last published itself."""

    id: str
    hostname: str
    pid: int
    queues: dict[str, int]
    concurrency: int | None
    state: str
    started_at: datetime
    uptime_s: float
    last_seen_s: float
    jobs_done: int
    running: int
    jobs_per_s: float


@dataclass(frozen=True, slots=True)
class JobSummary:
    """One job in a list.

    :ivar at: scheduled: when it runs; running: when its lease ends; dead: when it died.
    :ivar args: None when the stored arguments were too long for a list view.
    :ivar worker: the id of the worker running it (running jobs).
    """

    id: str
    queue: str
    state: State
    task: str | None
    args: list[Any] | None
    kwargs: dict[str, Any] | None
    attempts: int
    enqueued_at: datetime | None
    at: datetime | None
    error_type: str | None
    error_message: str | None
    worker: str | None


@dataclass(frozen=True, slots=True)
class JobPage:
    """A page of a queue's jobs in one state, and how many there are in all."""

    queue: str
    state: State
    total: int
    offset: int
    jobs: list[JobSummary]


@dataclass(frozen=True, slots=True)
class JobDetail:
    """Everything stored about one job.

    :ivar error: the last error: ``type``, ``message`` and ``traceback``.
    :ivar checkpoint: the last saved state (``ctx.checkpoint``), or None.
    :ivar steps: completed ``ctx.step`` names and values.
    :ivar worker: the id of the worker running it.
    """

    id: str
    queue: str
    status: JobStatus
    task: str | None = None
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    attempts: int = 0
    enqueued_at: datetime | None = None
    scheduled_at: datetime | None = None
    finished_at: datetime | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    checkpoint: Any = None
    steps: dict[str, Any] = field(default_factory=dict)
    worker: str | None = None
    cancel_requested: bool = False
    payload: dict[str, Any] = field(default_factory=dict)


def to_jsonable(value: Any) -> Any:
    """A dataclass (or list of them) as JSON-ready data: datetimes in ISO 8601."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, Enum):
        return value.value
    return value
