"""Job fields on every log line written while a job runs, including the job's own lines.

When a job starts, its record is put in a context variable of the job's asyncio task
(tasks the job creates inherit it).  The :class:`JobFieldsFilter` that
:func:`aioworker.logs.setup_logging` installs copies the job's ``job_id``, ``task``,
``queue`` and ``attempt`` onto every log record made in that context that does not carry
them already, so ``logger.info("charged")`` inside a job comes out in JSON logs with the
job's fields.  The fields are read from the record when a line is logged, so a job that
logs nothing costs no dict of its own.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any, Protocol

from .job import JobRecord

__all__ = ("JobFieldsFilter", "JobLogFields", "RunFields", "current_job_fields", "event_fields")

_JOB: contextvars.ContextVar[JobRecord | None] = contextvars.ContextVar(
    "aioworker_job", default=None
)


def _fields(job: JobRecord) -> dict[str, Any]:
    return {"job_id": job.id, "task": job.task, "queue": job.queue, "attempt": job.attempt}


class RunFields(Protocol):
    """What :func:`event_fields` reads of a run (the run loop's ``Running`` has it)."""

    @property
    def job_id(self) -> str: ...

    @property
    def task_name(self) -> str: ...

    @property
    def queue(self) -> str: ...

    @property
    def attempt(self) -> int: ...


def event_fields(run: RunFields, event: str, error_class: Any = None) -> dict[str, Any]:
    """The ``extra`` of a log line the worker writes about a run: the job's fields, the
    ``event`` and, on errors, the ``error_class``."""
    extra = {
        "job_id": run.job_id,
        "task": run.task_name,
        "queue": run.queue,
        "attempt": run.attempt,
        "event": event,
    }
    if error_class:
        extra["error_class"] = error_class
    return extra


def current_job_fields() -> dict[str, Any] | None:
    """The fields of the job running in this context, or None outside jobs."""
    job = _JOB.get()
    return None if job is None else _fields(job)


class JobLogFields:
    """An :class:`~aioworker.extensions.Observer` that sets the job fields at job start."""

    def job_started(self, job: JobRecord) -> None:
        _JOB.set(job)

    def job_finished(self, job: JobRecord, outcome: str, duration_s: float) -> None:
        pass  # the job's task ends with it, and its context with it


class JobFieldsFilter(logging.Filter):
    """Adds the running job's fields to records that lack them (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = _JOB.get()
        if job is not None:
            d = record.__dict__
            for name, value in _fields(job).items():
                if name not in d:
                    d[name] = value
        return True
