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

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from .job import JobRecord

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .broker import Broker
    from .keys import QueueKeys
    from .settings import Settings

__all__ = ("Gate", "Observer", "RunContext", "Service")


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


Service = Callable[[RunContext], Awaitable[None]]
