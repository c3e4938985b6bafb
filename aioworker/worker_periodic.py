"""The worker's periodic jobs and leadership: ``@worker.cron``, ``worker.scheduler``,
``worker.leader()`` and ``@worker.singleton``.

A part of :class:`~aioworker.worker.Worker` kept in its own module: the schedules live in
:mod:`aioworker.cron`, leader election in :mod:`aioworker.leader`; this is only their
face on the worker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, cast

from .context import JobContext
from .cron import CronHost, Missed, Scheduler
from .leader import Body, Leadership, run_singleton
from .task import Task
from .timeunits import Seconds, to_seconds

if TYPE_CHECKING:
    from .client import Client
    from .extensions import RunContext, Service
    from .settings import Settings

__all__ = ("PeriodicJobs",)

P = ParamSpec("P")
R = TypeVar("R")


class PeriodicJobs:
    """Periodic jobs and leadership of a :class:`~aioworker.worker.Worker`."""

    _scheduler: Scheduler | None = None
    prefix: str

    if TYPE_CHECKING:

        @property
        def client(self) -> Client: ...

        @property
        def settings(self) -> Settings: ...

        def service(self, fn: Service) -> Service: ...

    def _host(self) -> CronHost:
        return cast("CronHost", self)  # mixed into the Worker, which registers tasks

    @property
    def scheduler(self) -> Scheduler:
        """The periodic schedules: ``list()``, ``pause()``, ``resume()``, ``run_now()``."""
        if self._scheduler is None:
            self._scheduler = Scheduler(self._host())
        return self._scheduler

    def cron(
        self,
        expr: str | None = None,
        *,
        every: Seconds | None = None,
        tz: str | tzinfo | None = None,
        name: str | None = None,
        queue: str | None = None,
        missed: Missed = "skip",
        grace: Seconds = 60.0,
        retries: int | None = None,
        timeout: Seconds | None = None,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
    ) -> Callable[[Callable[Concatenate[JobContext, P], Awaitable[R]] | Task[P, R]], Task[P, R]]:
        """Run a task periodically: exactly one job per tick over all worker processes.

        :param expr: a cron expression (5 fields, or 6 with seconds first; see
            :mod:`aioworker.cronexpr`), read on ``tz``'s wall clock.
        :param every: instead of ``expr``: a tick every this many seconds (at least 1),
            at whole multiples of it since the epoch.
        :param tz: IANA zone name or tzinfo for ``expr`` (default UTC).
        :param name: the schedule's name (default the task's name).
        :param queue: the queue its jobs go to (default the task's queue, or ``default``).
        :param missed: ticks missed by more than ``grace`` (no worker ran): ``"skip"``
            them, or ``"catch_up"`` with one job.
        :param grace: seconds within which a late tick still runs (failover, deploys).
        :param retries: retries of the task's jobs; :param timeout: their timeout.
        :param args: arguments of every job; :param kwargs: keyword arguments.
        :returns: a decorator of an ``async def fn(ctx, ...)`` or of an existing task;
            it returns the task.
        :raises ConfigError: for a bad expression, zone, name, policy or arguments.
        """

        def register(
            fn: Callable[Concatenate[JobContext, P], Awaitable[R]] | Task[P, R],
        ) -> Task[P, R]:
            return self.scheduler.add(
                fn,
                expr=expr,
                every=every,
                tz=tz,
                name=name,
                queue=queue,
                missed=missed,
                grace=grace,
                retries=retries,
                timeout=timeout,
                args=args,
                kwargs=kwargs,
            )

        return register

    def leader(self, name: str, *, ttl: Seconds = 10.0) -> Leadership:
        """A claim on the leadership ``name``: ``async with worker.leader("x") as lead:``.

        Entering waits until this process is elected; the body is cancelled with
        :class:`LeadershipLost` if the lease is lost; leaving steps down.

        :param ttl: seconds the lease lasts without renewal; failover takes at most
            ``ttl + min(ttl / 4, 1)`` seconds after a leader dies.
        """
        return Leadership(self.client.broker, self.prefix, name, ttl=to_seconds(ttl))

    def singleton(self, name: str, *, ttl: Seconds = 10.0) -> Callable[[Body], Body]:
        """Run ``async def fn(lead)`` in exactly one worker process at a time: the leader.

        Every worker runs it as a background service that waits to be elected; a leader
        that loses its lease has ``fn`` cancelled; one that shuts down steps down and
        another process takes over.  ``fn`` that raises is run again a second later.
        """

        def register(fn: Body) -> Body:
            async def service(run: RunContext) -> None:
                await run_singleton(self, name, fn, ttl=to_seconds(ttl))

            self.service(service)
            return fn

        return register
