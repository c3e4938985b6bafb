"""What one run of the worker is given: ``RunPlan``.

:meth:`Worker.run <aioworker.Worker.run>` builds the plan from its configuration at the
start of a run (settings frozen, registries copied), and the run loop reads only the
plan: nothing below ``worker.py`` holds the ``Worker``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Client
    from .context import BatchLookup
    from .extensions import Gate, Observer, Service
    from .hooks import Hook
    from .settings import Settings
    from .task import Task

__all__ = ("RunPlan",)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPlan:
    """The settings, connection, tasks and extensions of one run.

    :ivar settings: the worker's settings, frozen at the start of the run.
    :ivar client: the connection (its broker is the run's only door to Redis).
    :ivar tasks: task name -> task.
    :ivar gates: run before every job, ahead of its task's own gates.
    :ivar observers: told of every job start and end.
    :ivar services: run beside the fetch loops for the life of the run.
    :ivar on_busy: hooks called when the first protected job starts.
    :ivar on_idle: hooks called when the last protected job ends.
    :ivar batch_of: finds the batch of a job (``ctx.batch``).
    :ivar stoppers: where the run registers its stop request (``Worker.stop()``).
    """

    settings: Settings
    client: Client
    tasks: Mapping[str, Task[Any, Any]]
    gates: Sequence[Gate] = ()
    observers: Sequence[Observer] = ()
    services: Sequence[Service] = ()
    on_busy: Sequence[Hook] = ()
    on_idle: Sequence[Hook] = ()
    batch_of: BatchLookup | None = None
    stoppers: list[Callable[[str], None]] | None = None
