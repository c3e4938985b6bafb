"""Periodic jobs: ``@worker.cron(...)`` schedules that enqueue exactly one job per tick.

- A schedule is a cron expression read on a time zone's wall clock (:mod:`aioworker.cronexpr`,
  our own parser) or ``every=N`` seconds (ticks at whole multiples of N since the epoch).
- Every worker process runs the scheduler as a background service, but only the elected
  leader of the leadership ``"cron"`` (:mod:`aioworker.leader`) enqueues ticks
  (:mod:`aioworker.ticker`).
- A tick's job has the deterministic id ``cron:<name>:<tick_ms>`` and is enqueued by
  ``lua/cron_tick.lua``, which in the same step compares and raises the schedule's marker
  (every tick at or before it was enqueued or skipped) on Redis TIME.  So each tick is
  enqueued at most once, by whichever process gets there first, even during a failover
  with two processes that believe they lead, after restarts, after the job's result
  expired, and whatever the machines' clocks say.
- Ticks missed by less than the schedule's ``grace`` (a failover, a deploy, a short outage)
  are all enqueued, late.  Older missed ticks follow ``missed``: ``"skip"`` drops them;
  ``"catch_up"`` enqueues one job (the id of the first missed tick) for all of them.
- A paused schedule's ticks are skipped (never run later); :meth:`Scheduler.run_now`
  enqueues a job at once whatever the schedule's state.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any, Protocol

from .cron_schedule import Missed, Schedule
from .cron_scripts import StateReply, cron_state
from .cronexpr import CronExpr
from .errors import ConfigError, UnknownScheduleError
from .handle import JobHandle
from .job import JobSpec
from .keys import QueueKeys, validate_name
from .leader import run_singleton
from .payload import encode_spec
from .scripts import Scripts
from .task import Task
from .ticker import Ticker
from .timeunits import Seconds, ms_to_datetime, to_ms

if TYPE_CHECKING:
    from .client import Client
    from .context import JobContext
    from .extensions import RunContext, Service
    from .settings import Settings

__all__ = (
    "CronHost",
    "CronTick",
    "Missed",
    "Schedule",
    "ScheduleInfo",
    "Scheduler",
    "tick_of",
)

#: The leadership whose holder enqueues the ticks of all schedules of a prefix.
LEADERSHIP = "cron"


# -- schedules -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """What is known about a schedule at one moment (``Scheduler.list()``).

    :ivar last_tick: the marker: every tick at or before it was enqueued or skipped.
    :ivar next_run: the first tick after now (None when paused or never again).
    """

    name: str
    task: str
    queue: str
    schedule: str
    tz: str
    missed: Missed
    paused_at: datetime | None
    last_tick: datetime | None
    last_job_id: str | None
    next_run: datetime | None

    @property
    def paused(self) -> bool:
        return self.paused_at is not None


@dataclass(frozen=True, slots=True)
class CronTick:
    """Which tick a job runs for (:func:`tick_of`).

    :ivar at: the tick's scheduled time, or when ``run_now`` was asked (UTC).
    :ivar manual: True for a job started by ``run_now`` / ``aioworker cron run``.
    """

    name: str
    at: datetime
    manual: bool


def tick_of(ctx: JobContext | str) -> CronTick | None:
    """The tick a periodic job runs for, read from its job id; None for other jobs.

    :param ctx: the job's context (or its id).
    """
    job_id = ctx if isinstance(ctx, str) else ctx.job_id
    if not job_id.startswith("cron:"):
        return None
    rest, _, last = job_id[5:].rpartition(":")
    manual = last.startswith("now-")
    if manual:
        rest, _, last = rest.rpartition(":")
    if not rest or not last.isdigit():
        return None
    return CronTick(rest, ms_to_datetime(int(last)), manual)


def _zone(tz: str | tzinfo | None) -> tzinfo:
    if tz is None:
        return UTC
    if isinstance(tz, tzinfo):
        return tz
    # imported here: zoneinfo loads sysconfig to find the tz database, which a worker
    # without named zones does not need
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {tz!r}: use an IANA name like 'Asia/Tokyo'") from exc


Fn = Callable[..., Awaitable[Any]]


class CronHost(Protocol):
    """What the scheduler needs of its worker: the client and settings, a way to register
    a function as a task, and one to add the leader's background service."""

    @property
    def client(self) -> Client: ...

    @property
    def settings(self) -> Settings: ...

    def task(
        self,
        *,
        name: str | None = None,
        queue: str = "default",
        retries: int | None = None,
        timeout: Seconds | None = None,
    ) -> Callable[[Fn], Task[Any, Any]]: ...

    def service(self, fn: Service) -> Service: ...


class Scheduler:
    """The periodic schedules of one :class:`Worker`, and their controls.

    Reach it as ``worker.scheduler``; register schedules with ``@worker.cron(...)``.
    """

    def __init__(self, host: CronHost) -> None:
        self.host = host
        self.schedules: dict[str, Schedule] = {}
        self.leadership = LEADERSHIP
        self._service_added = False

    def add(
        self,
        fn: Fn | Task[Any, Any],
        *,
        expr: str | None,
        every: Seconds | None,
        tz: str | tzinfo | None,
        name: str | None,
        queue: str | None,
        missed: Missed,
        grace: Seconds,
        retries: int | None,
        timeout: Seconds | None,
        args: Sequence[Any],
        kwargs: Mapping[str, Any] | None,
    ) -> Task[Any, Any]:
        """Register a schedule (``@worker.cron`` calls this; see its docstring).

        :raises ConfigError: for a bad expression, zone, name, policy or arguments.
        :raises PayloadError: for arguments that cannot be encoded as JSON.
        """
        if (expr is None) == (every is None):
            raise ConfigError("give a cron expression or every=seconds (exactly one)")
        if missed not in ("skip", "catch_up"):
            raise ConfigError(f"missed must be 'skip' or 'catch_up', not {missed!r}")
        parsed = CronExpr.parse(expr) if expr is not None else None
        every_ms = None
        if every is not None:
            if tz is not None:
                raise ConfigError("tz applies to cron expressions, not to every= schedules")
            every_ms = to_ms(every)
            if every_ms < 1000:
                raise ConfigError("every= must be at least 1 second")
        zone = _zone(tz)
        if isinstance(fn, Task):
            task = fn
            if retries is not None or timeout is not None:
                raise ConfigError("set retries/timeout on the task when it is already one")
        else:
            if not inspect.iscoroutinefunction(fn):
                raise ConfigError(f"periodic job {fn!r} must be an async def function")
            task = self.host.task(
                name=name, queue=queue or "default", retries=retries, timeout=timeout
            )(fn)
        sched_name = validate_name("schedule", name or task.name)
        if sched_name in self.schedules:
            raise ConfigError(f"a schedule named {sched_name!r} is already registered")
        kw = dict(kwargs or {})
        try:
            task.signature.bind(None, *args, **kw)
        except TypeError as exc:
            raise ConfigError(f"schedule {sched_name!r}: arguments do not fit: {exc}") from None
        target = queue or task.queue
        spec = JobSpec(task=task.name, queue=target, args=tuple(args), kwargs=kw)
        schedule = Schedule(
            name=sched_name,
            task=task,
            queue=validate_name("queue", target),
            expr=parsed,
            every_ms=every_ms,
            tz=zone,
            missed=missed,
            grace_ms=to_ms(grace),
            args=tuple(args),
            kwargs=kw,
            payload=encode_spec(spec, self.host.settings.max_payload_bytes),
        )
        if parsed is not None and schedule.next_after_ms(_now_ms()) is None:
            raise ConfigError(f"cron expression {parsed.text!r} never fires")
        self.schedules[sched_name] = schedule
        if not self._service_added:
            self._service_added = True
            self.host.service(self._service)
        return task

    def get(self, name: str) -> Schedule:
        """The schedule called ``name``.

        :raises UnknownScheduleError: if there is none.
        """
        try:
            return self.schedules[name]
        except KeyError:
            known = ", ".join(sorted(self.schedules)) or "none"
            raise UnknownScheduleError(f"no schedule named {name!r} (known: {known})") from None

    @property
    def scripts(self) -> Scripts:
        """The scripts the schedules' state is read and written with."""
        return self.host.client.broker.scripts

    def keys(self, s: Schedule) -> QueueKeys:
        """The keys of the queue a schedule enqueues to (its marker lives there too)."""
        return self.host.client.keys(s.queue)

    async def _state(self, s: Schedule, op: str) -> StateReply:
        return await cron_state(self.scripts, self.keys(s), s.name, op)

    def _info(self, s: Schedule, st: StateReply) -> ScheduleInfo:
        paused = st.paused_ms >= 0
        nxt = None if paused else s.next_after_ms(max(st.marker_ms, st.now_ms))
        return ScheduleInfo(
            name=s.name,
            task=s.task.name,
            queue=s.queue,
            schedule=s.spec,
            tz=s.tz_name if s.expr is not None else "-",
            missed=s.missed,
            paused_at=ms_to_datetime(st.paused_ms) if paused else None,
            last_tick=ms_to_datetime(st.marker_ms) if st.marker_ms >= 0 else None,
            last_job_id=st.job_id or None,
            next_run=None if nxt is None else ms_to_datetime(nxt),
        )

    # -- controls --------------------------------------------------------------------

    async def info(self, name: str) -> ScheduleInfo:
        """The state of one schedule.

        :raises UnknownScheduleError: if there is no such schedule.
        """
        s = self.get(name)
        return self._info(s, await self._state(s, "get"))

    async def list(self) -> list[ScheduleInfo]:
        """Every registered schedule with its state and next run, by name."""
        return [await self.info(name) for name in sorted(self.schedules)]

    async def pause(self, name: str) -> ScheduleInfo:
        """Stop enqueueing the schedule's ticks until :meth:`resume` (they are skipped).

        :raises UnknownScheduleError: if there is no such schedule.
        """
        s = self.get(name)
        return self._info(s, await self._state(s, "pause"))

    async def resume(self, name: str) -> ScheduleInfo:
        """Enqueue the schedule's ticks again, from the first tick after now.

        :raises UnknownScheduleError: if there is no such schedule.
        """
        s = self.get(name)
        return self._info(s, await self._state(s, "resume"))

    async def run_now(self, name: str) -> JobHandle[Any]:
        """Enqueue one job of the schedule at once (also while paused); ticks go on as usual.

        :returns: the job's handle; its id reads ``cron:<name>:<now_ms>:now-<random>``.
        :raises UnknownScheduleError: if there is no such schedule.
        """
        s = self.get(name)
        st = await self._state(s, "get")
        job_id = f"{s.job_id(st.now_ms)}:now-{uuid.uuid4().hex[:8]}"
        spec = JobSpec(task=s.task.name, queue=s.queue, args=s.args, kwargs=s.kwargs, job_id=job_id)
        (handle,) = await self.host.client.enqueue([spec])
        return handle

    # -- the leader's service ----------------------------------------------------------

    async def _service(self, run: RunContext) -> None:
        async def lead(leadership: Any) -> None:
            await Ticker(self, leadership).run()

        ttl = self.host.settings.lease_timeout_s
        await run_singleton(self.host, self.leadership, lead, ttl=ttl)


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)
