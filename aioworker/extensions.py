"""Extension points of the runtime, used by limiters, unique jobs, batches, cron, metrics.

- A :class:`Gate` admits a job before it runs and is told when it finished.  A gate that
  is not ready to admit returns how many seconds to wait: the job goes back to its queue
  for that long without counting an attempt and without holding a slot.  A gate that
  raises fails the attempt like the job itself would.
- An :class:`Observer` hears of every job start and end (cheap, synchronous callbacks).
- A :data:`Service` is a coroutine run beside the fetch loops for the life of a worker
  process (schedulers, housekeeping, registries); it is cancelled after the drain.  It is
  given a :class:`RunContext`, the narrow view of the run it serves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from .job import JobRecord

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .broker import Broker
    from .keys import QueueKeys
    from .settings import Settings

__all__ = ("Gate", "Observer", "RunContext", "RunView", "RunningJob", "Service")


class Gate(Protocol):
    """Admission control for the jobs of a task."""

    async def enter(self, job: JobRecord) -> float | None:
        """None to admit the job now, else seconds to wait before trying again."""
        ...

    async def exit(self, job: JobRecord, outcome: str) -> None:
        """The admitted job finished (``complete``, ``retry``, ``dead``, ``requeue``,
        ``cancel``, or ``defer`` when a later gate deferred it)."""
        ...


class Observer(Protocol):
    """Hears of job starts and ends; must not block.

    ``job_started`` is called in the job's own asyncio task right before its function
    runs (context variables set there are seen by the job).  ``job_finished`` is called
    in the same task once the outcome is written, with ``complete``, ``retry``, ``dead``,
    ``requeue``, ``cancel`` or ``defer``; it is also called for jobs that never started
    (arguments that do not fit: ``dead``; a gate deferred it: ``defer``, with the delay
    the gate asked for as ``duration_s``).
    """

    def job_started(self, job: JobRecord) -> None: ...

    def job_finished(self, job: JobRecord, outcome: str, duration_s: float) -> None: ...


class RunContext(Protocol):
    """What a :data:`Service` sees of the worker process it runs in."""

    @property
    def worker_id(self) -> str:
        """This process's id in the worker registry (``host:pid:random``)."""
        ...

    @property
    def queues(self) -> Sequence[str]:
        """The queues this process serves."""
        ...

    @property
    def keys(self) -> Mapping[str, QueueKeys]:
        """The key names of each served queue."""
        ...

    @property
    def broker(self) -> Broker:
        """The connection the run uses (the only door to Redis)."""
        ...

    @property
    def settings(self) -> Settings:
        """The settings the run started with."""
        ...


class RunningJob(Protocol):
    """A job the run executes, as the run's instruments see it."""

    @property
    def queue(self) -> str: ...

    @property
    def task_name(self) -> str: ...

    @property
    def attempt(self) -> int: ...

    @property
    def executing(self) -> bool:
        """True until the job's function returned (its outcome is being written)."""
        ...

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The asyncio task the job runs in."""
        ...

    cancel: bool  # set when an operator asked to cancel this run


class RunView(RunContext, Protocol):
    """What the instruments of a run (registry record, cancel watcher) read of it."""

    @property
    def running(self) -> Mapping[str, RunningJob]:
        """Job id -> the jobs this process runs now."""
        ...

    @property
    def stats(self) -> Mapping[str, int]:
        """Counts of the outcomes written so far."""
        ...

    @property
    def stopping(self) -> bool:
        """True once the run stopped fetching (draining)."""
        ...

    @property
    def limits(self) -> Mapping[str, int]:
        """Queue -> how many of its jobs this process runs at once."""
        ...

    @property
    def total(self) -> int | None:
        """The process-wide cap, or None."""
        ...

    def spawn(self, name: str, loop: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Start ``loop`` supervised by the run (restarted with backoff when it fails)."""
        ...


Service = Callable[[RunContext], Awaitable[None]]
