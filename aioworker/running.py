"""A job this worker is running, and how it is described in log lines."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from .context import JobContext
from .extensions import Gate
from .job import JobRecord

__all__ = ("Running", "describe", "unsaved_state")


def describe(run: Running) -> str:
    """A job and how far it got, for shutdown log lines."""
    progress = run.ctx.progress() if run.ctx is not None else "not started"
    return (
        f"job {run.job_id} {run.task_name} (queue {run.queue}, attempt {run.attempt}, "
        f"ran {time.monotonic() - run.started:.1f} s, {progress})"
    )


def unsaved_state(run: Running) -> bytes:
    """The job's checkpoint if it made progress since its last save, else b"" (keep)."""
    if run.ctx is not None and run.ctx.unsaved:
        return run.ctx.encoded_state()
    return b""


@dataclass(slots=True, eq=False)
class Running:
    """A job this worker is running."""

    queue: str
    job_id: str
    task_name: str
    token: str
    attempt: int
    started: float
    ctx: JobContext | None = None
    task: asyncio.Task[None] | None = None
    executing: bool = True
    protected: bool = False
    record: JobRecord | None = None
    gates: list[Gate] = field(default_factory=list)
    lease_lost: bool = False
    abandoned: bool = False
    outcome: str = ""
    batch: str = ""  # the batch a child job belongs to, for its outcome's outbox entry
    cancel: bool = False  # an operator asked to cancel this run

    def cancel_requested(self) -> bool:
        """True once an operator asked to cancel this run (see :mod:`cancellation`)."""
        return self.cancel
