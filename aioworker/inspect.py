"""Read-only queries about queues, jobs and workers, for the CLI and dashboards.

Every query returns plain frozen dataclasses (``dataclasses.asdict`` turns them into
JSON-ready dicts with :func:`to_jsonable`).  Nothing here uses ``KEYS``: queues come from
the queue registry (:mod:`aioworker.registry`) plus the app's own configuration, and
large sets are read a page at a time.  Each read is one Lua script per queue, so counts
and pages are consistent snapshots.

::

    insp = Inspector(worker)
    for q in await insp.queue_stats():
        print(q.name, q.ready, q.running)
    page = await insp.jobs("default", "dead", limit=20)
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from .errors import ConfigError
from .handle import reply_fields
from .inspect_views import (
    STATES,
    JobDetail,
    JobPage,
    JobSummary,
    QueueStats,
    State,
    Survey,
    WorkerInfo,
    to_jsonable,
)
from .job import JobStatus
from .keys import QueueKeys, RegistryKeys, validate_name
from .payload import DecodeError, decode_record, decode_state, loads, split_stamped
from .registry import WorkerRecord, owner_of, queues, workers_list
from .reply import text
from .skipped import SkippedQueue, skipping
from .timeunits import ms_to_datetime

if TYPE_CHECKING:
    from .client import Client
    from .limit_info import LimiterInfo
    from .scripts import Scripts
    from .settings import Settings
    from .task import Task

__all__ = (
    "STATES",
    "InspectHost",
    "Inspector",
    "JobDetail",
    "JobPage",
    "JobSummary",
    "QueueStats",
    "SkippedQueue",
    "State",
    "Survey",
    "WorkerInfo",
    "job_extra",
    "jobs_page",
    "queue_stats",
    "to_jsonable",
)

#: Most bytes of a job's stored record read for list views (arguments beyond are cut).
LIST_RECORD_BYTES = 4096

_TASK_PREFIX = re.compile(rb'^\{"t":"((?:[^"\\]|\\.)*)"')


# -- typed wrappers of the read scripts -----------------------------------------------


async def queue_stats(scripts: Scripts, k: QueueKeys) -> QueueStats:
    """One queue's counts, read atomically."""
    now, ready, sched, active, dead, paused, due, expired, cancels = await scripts.run(
        "queue_stats", [k.ready, k.scheduled, k.active, k.dead, k.paused, k.cancel, k.fair], []
    )
    del now
    paused_ms = int(paused)
    return QueueStats(
        name=k.queue,
        ready=int(ready),
        scheduled=int(sched),
        running=int(active),
        dead=int(dead),
        paused=paused_ms != -1,
        paused_at=ms_to_datetime(paused_ms) if paused_ms > 0 else None,
        due=int(due),
        expired=int(expired),
        cancel_requests=int(cancels),
    )


async def job_extra(scripts: Scripts, k: QueueKeys, job_id: str) -> tuple[str, str]:
    """``(lease token, cancel request time)`` of one job, ``''`` for each that is absent."""
    lease, requested = await scripts.run("job_extra", [k.leases, k.cancel], [job_id])
    return text(lease), text(requested)


async def jobs_page(
    scripts: Scripts, k: QueueKeys, state: State, offset: int, count: int, cut: int
) -> JobPage:
    """A page of a queue's jobs in one state (see ``lua/jobs_page.lua`` for the order)."""
    keys = [k.ready, k.scheduled, k.active, k.dead, k.jobs, k.attempts, k.errors, k.leases]
    keys.append(k.fair)
    _now, total, flat = await scripts.run("jobs_page", keys, [state, offset, count, cut])
    jobs = [
        _summary(k.queue, state, [flat[i + j] for j in range(6)], cut)
        for i in range(0, len(flat), 6)
    ]
    return JobPage(k.queue, state, int(total), offset, jobs)


def _summary(queue: str, state: State, row: list[Any], cut: int) -> JobSummary:
    job_id, score, record, attempts, error, lease = (
        v.decode(errors="replace") if isinstance(v, bytes) and i != 2 else v
        for i, v in enumerate(row)
    )
    raw = record if isinstance(record, bytes) else str(record).encode()
    task: str | None = None
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    enqueued: datetime | None = None
    if raw:
        try:
            stamp, body = split_stamped(raw)
            enqueued = ms_to_datetime(stamp)
        except DecodeError:
            body = b""
        try:
            data = loads(body)
            task, args, kwargs = data.get("t"), data.get("a"), data.get("k")
        except ValueError:  # cut for the list view, or corrupt
            m = _TASK_PREFIX.match(body)
            if m:
                task = loads(b'"' + m.group(1) + b'"')
    err: dict[str, Any] = {}
    if error:
        try:
            err = loads(error)
        except ValueError:
            err = {"type": "?", "message": str(error)[:200]}
    at = ms_to_datetime(int(float(score))) if score and state != "ready" else None
    return JobSummary(
        id=str(job_id),
        queue=queue,
        state=state,
        task=task,
        args=args,
        kwargs=kwargs,
        attempts=int(attempts or 0),
        enqueued_at=enqueued,
        at=at,
        error_type=err.get("type"),
        error_message=err.get("message"),
        worker=owner_of(str(lease)) if lease and state == "running" else None,
    )


# -- the inspector --------------------------------------------------------------------


class InspectHost(Protocol):
    """What the inspector reads of an app: its client, settings (prefix, queues) and
    registered tasks (a :class:`~aioworker.Worker` is one)."""

    @property
    def client(self) -> Client: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def tasks(self) -> Mapping[str, Task[Any, Any]]: ...


class Inspector:
    """Read-only queries for one app (its Redis, prefix and queues).

    :param worker: the app's :class:`~aioworker.Worker` (only its settings and
        connection are used; nothing runs).
    """

    def __init__(self, worker: InspectHost) -> None:
        self.worker = worker
        self.client = worker.client
        self.scripts = self.client.broker.scripts
        self.registry = RegistryKeys(worker.settings.prefix)

    def keys(self, queue: str) -> QueueKeys:
        return self.client.keys(validate_name("queue", queue))

    async def known_queues(self) -> tuple[list[str], list[SkippedQueue]]:
        """Every known queue: registered by workers and producers, configured in the app,
        or used by its tasks; and the registered names left out because they break the
        naming rule (or the registry itself, when it cannot be read)."""
        await self.client.broker.connect()
        skipped: list[SkippedQueue] = []
        registered: list[str] = []
        with skipping(self.registry.queues, skipped):
            registered = await queues(self.scripts, self.registry)
        names = set(self.worker.settings.queues)
        names.update(t.queue for t in self.worker.tasks.values())
        for name in registered:
            try:
                names.add(validate_name("queue", name))
            except ConfigError as exc:
                # bytes that were not UTF-8 are shown as \xNN escapes (JSON-safe)
                shown = name.encode(errors="surrogateescape").decode(errors="backslashreplace")
                skipped.append(SkippedQueue(shown, str(exc)))
        return sorted(names), skipped

    async def queue_names(self) -> list[str]:
        """Every known queue with a valid name (see :meth:`known_queues`)."""
        return (await self.known_queues())[0]

    async def survey(self, names: Iterable[str] | None = None) -> Survey:
        """Counts of the given queues (default: every known queue), leaving out and
        listing in ``skipped`` the queues that cannot be read.

        :raises ConfigError: for a given name that breaks the naming rule.
        """
        if names is None:
            chosen, skipped = await self.known_queues()
        else:
            chosen, skipped = list(names), []
        stats: list[QueueStats] = []
        for q in chosen:
            k = self.keys(q)
            with skipping(q, skipped):
                stats.append(await queue_stats(self.scripts, k))
        return Survey(stats, skipped)

    async def queue_stats(self, names: Iterable[str] | None = None) -> list[QueueStats]:
        """Counts of the given queues (default: every known queue) that can be read."""
        return (await self.survey(names)).queues

    async def pages(
        self, names: Sequence[str], states: Sequence[State], *, offset: int = 0, limit: int = 20
    ) -> tuple[list[JobPage], list[SkippedQueue]]:
        """A page of each queue's jobs in each state; a queue whose keys cannot be read is
        left out and listed instead."""
        out: list[JobPage] = []
        skipped: list[SkippedQueue] = []
        for q in names:
            with skipping(q, skipped):
                out.extend([await self.jobs(q, s, offset=offset, limit=limit) for s in states])
        return out, skipped

    async def workers(self) -> list[WorkerInfo]:
        """Live workers, oldest first."""
        await self.client.broker.connect()
        now, rows = await workers_list(self.scripts, self.registry)
        out: list[WorkerInfo] = []
        for worker_id, _deadline, raw in rows:
            try:
                rec = WorkerRecord.decode(worker_id, raw)
            except (ValueError, TypeError):
                continue  # a record of a newer or older version that does not decode
            out.append(
                WorkerInfo(
                    id=rec.id,
                    hostname=rec.hostname,
                    pid=rec.pid,
                    queues=rec.queues,
                    concurrency=rec.concurrency,
                    state=rec.state,
                    started_at=ms_to_datetime(rec.started_ms),
                    uptime_s=max(now - rec.started_ms, 0) / 1000,
                    last_seen_s=max(now - rec.seen_ms, 0) / 1000,
                    jobs_done=rec.jobs_done,
                    running=rec.running,
                    jobs_per_s=rec.jobs_per_s,
                )
            )
        out.sort(key=lambda w: (w.started_at, w.id))
        return out

    async def jobs(self, queue: str, state: State, *, offset: int = 0, limit: int = 20) -> JobPage:
        """A page of a queue's jobs in one state.

        :param state: ``ready`` (next to run first), ``scheduled`` (soonest first),
            ``running`` (lease ending soonest first) or ``dead`` (newest first).
        :raises ValueError: for an unknown state or a negative offset or limit.
        """
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}: use one of {', '.join(STATES)}")
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must not be negative")
        await self.client.broker.connect()
        return await jobs_page(
            self.scripts, self.keys(queue), state, offset, limit, LIST_RECORD_BYTES
        )

    async def iter_ids(
        self, queue: str, state: State, *, page: int = 500
    ) -> list[tuple[str, str | None]]:
        """Every ``(id, task)`` of a queue in one state, read a page at a time."""
        out: list[tuple[str, str | None]] = []
        offset = 0
        while True:
            p = await jobs_page(self.scripts, self.keys(queue), state, offset, page, 512)
            out.extend((j.id, j.task) for j in p.jobs)
            if len(p.jobs) < page:
                return out
            offset += page

    async def job(self, queue: str, job_id: str) -> JobDetail:
        """Everything stored about one job (status ``not_found`` if nothing is)."""
        await self.client.broker.connect()
        k = self.keys(queue)
        reply = await self.scripts.status(k, job_id)
        info: dict[str, Any] = {"id": job_id, "queue": queue, **reply_fields(reply)}
        if reply.record:
            try:
                _, body = decode_record(reply.record)
            except DecodeError:
                pass
            else:
                info["payload"] = {k2: v for k2, v in body.items() if k2 not in ("t", "a", "k")}
        if reply.state:
            user, steps, _cursors = decode_state(reply.state)
            info["checkpoint"] = user
            info["steps"] = steps
        if reply.where == "active":
            lease, requested = await job_extra(self.scripts, k, job_id)
            info["worker"] = owner_of(lease) if lease else None
            info["cancel_requested"] = bool(requested)
        return JobDetail(**info)

    async def find(self, job_id: str, queue_names: Sequence[str] | None = None) -> JobDetail:
        """Look a job up in the given queues (default every known queue).

        :returns: the first queue's detail where it is known, else a ``not_found`` detail
            for the first queue searched.
        """
        names = list(queue_names) if queue_names else await self.queue_names()
        first: JobDetail | None = None
        for q in names:
            d: JobDetail | None = None
            with skipping(q, []):  # a queue with a wrong-typed key: look on
                d = await self.job(q, job_id)
            if d is None:
                continue
            if d.status is not JobStatus.NOT_FOUND:
                return d
            first = first or d
        return first or JobDetail(job_id, names[0] if names else "default", JobStatus.NOT_FOUND)

    async def limiters(self) -> list[LimiterInfo]:
        """The limiters on the app's tasks and their state (see :mod:`aioworker.limit_info`)."""
        from .limit_info import limiters

        return await limiters(self.worker)

    async def extras(self) -> dict[str, list[dict[str, Any]]]:
        """State of the features beside the core that the app uses, as JSON-ready rows:
        ``limiters`` (with holds and waiters), ``schedules`` (with their next run) and
        ``batches`` in progress.  A feature the app does not use is left out."""
        out: dict[str, list[dict[str, Any]]] = {}
        if importlib.util.find_spec("aioworker.limit_info") is not None:
            limit_info: Any = importlib.import_module("aioworker.limit_info")
            if rows := await limit_info.limiters(self.worker):
                out["limiters"] = to_jsonable(list(rows))
        scheduler: Any = getattr(self.worker, "scheduler", None)
        if scheduler is not None and (rows := await scheduler.list()):
            out["schedules"] = to_jsonable(list(rows))
        batches: Any = getattr(self.worker, "batches", None)
        if batches is not None and hasattr(batches, "list"):
            live = [b for b in await batches.list(limit=50) if not getattr(b, "finished", False)]
            if live:
                out["batches"] = to_jsonable(live)
        return out
