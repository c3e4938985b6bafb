"""Jobs as plain data: what is enqueued, what a worker runs, and what is known about one."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ("JobInfo", "JobRecord", "JobSpec", "JobStatus", "UniqueSpec")


class JobStatus(enum.StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    """Ready to run, waiting for a worker."""
    SCHEDULED = "scheduled"
    """Waiting for its run time (delayed, or a retry after backoff)."""
    RUNNING = "running"
    """Leased by a worker that is running it."""
    COMPLETE = "complete"
    """Finished successfully; its result is kept for the result TTL."""
    DEAD = "dead"
    """Dead-lettered: attempts exhausted, or it could not run at all."""
    CANCELLED = "cancelled"
    """Cancelled by an operator (``aioworker cancel``); kept for the result TTL."""
    NOT_FOUND = "not_found"
    """Unknown: never enqueued, or its result expired."""


@dataclass(frozen=True, slots=True)
class UniqueSpec:
    """A policy resolved for one job: what the enqueue script and the gate need.

    :ivar mode: the script's mode (``start``, ``success``, ``debounce``, ``throttle``), or
        ``running`` for while_running (no lock at enqueue; the gate takes one).
    :ivar key: the unique key.
    :ivar ttl_ms: the lock's TTL.
    :ivar delay_ms: debounce: the window, which becomes the job's delay.
    """

    mode: str
    key: str
    ttl_ms: int
    raise_on_duplicate: bool = False
    delay_ms: int = 0
    extend: bool = False
    max_wait_ms: int = 0


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A job to enqueue: which task, its arguments and the enqueue options.

    Built by ``Task.call(...)`` / ``Task.options(...).call(...)`` and passed to
    ``Worker.enqueue_many``.
    """

    task: str
    queue: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    job_id: str | None = None
    delay_ms: int = 0
    at_ms: int = 0
    retries: int | None = None
    timeout_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Feature keys stored in the payload (see :mod:`aioworker.payload`), e.g. the batch."""
    group: str | None = None
    """Fair-share group (see :mod:`aioworker.groups`)."""
    unique: UniqueSpec | None = None
    """Unique, throttle or debounce lock (see :mod:`aioworker.unique`)."""


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as a worker received it from Redis (what gates and observers see).

    :ivar payload: the whole decoded payload, for features that store their own keys
        in it (see :mod:`aioworker.payload`).
    """

    id: str
    queue: str
    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    enqueued_ms: int
    attempt: int
    max_attempts: int
    token: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class JobInfo:
    """What is known about a job at one moment (``Job.info()``)."""

    id: str
    queue: str
    status: JobStatus
    task: str | None = None
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    attempts: int = 0
    enqueued_at: datetime | None = None
    finished_at: datetime | None = None
    scheduled_at: datetime | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    state: Any = None
