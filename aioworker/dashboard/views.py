"""What the dashboard shows, as JSON-ready data, with job arguments hidden unless asked.

Every read goes through :class:`~aioworker.inspect.Inspector` (and the features' own
list functions: ``worker.scheduler.list()``, ``worker.batches.list()``).  Everything a job
carries of its caller's data (arguments, result, checkpoint, step values, feature keys
that may be derived from arguments) goes through :func:`job_summary` and
:func:`job_detail`, the only two places that turn jobs into JSON, and is dropped there
unless ``show_args`` is set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..inspect import STATES, Inspector, JobDetail, JobSummary, State, to_jsonable
from ..job import JobStatus
from .history import History

if TYPE_CHECKING:
    from ..worker import Worker

__all__ = ("Views", "job_detail", "job_summary")

#: Most jobs one list answer holds.
MAX_LIMIT = 500

#: Payload feature keys shown while arguments are hidden (none is derived from arguments):
#: retries, timeout, delay, run time, batch id, batch callback counts.
SAFE_PAYLOAD_KEYS = frozenset({"r", "o", "d", "at", "b", "bc"})


def job_summary(job: JobSummary, show_args: bool) -> dict[str, Any]:
    """One job of a list as JSON; ``args`` and ``kwargs`` are None unless ``show_args``."""
    out: dict[str, Any] = to_jsonable(job)
    if not show_args:
        out["args"] = out["kwargs"] = None
        out["hidden"] = True
    return out


def job_detail(job: JobDetail, show_args: bool) -> dict[str, Any]:
    """One job's detail as JSON; its caller's data is left out unless ``show_args``."""
    out: dict[str, Any] = to_jsonable(job)
    if not show_args:
        out["args"] = out["kwargs"] = out["result"] = out["checkpoint"] = None
        out["steps"] = sorted(out["steps"])  # names only: values may hold caller data
        out["payload"] = {k: v for k, v in out["payload"].items() if k in SAFE_PAYLOAD_KEYS}
        out["hidden"] = True
    return out


class Views:
    """The dashboard's read side for one app.

    :param worker: the app's worker.
    :param show_args: include job arguments, results and checkpoints.
    :param cache_s: the overview is computed at most once per this many seconds, however
        many pages poll it.
    """

    def __init__(self, worker: Worker, *, show_args: bool, cache_s: float = 0.5) -> None:
        self.worker = worker
        self.show_args = show_args
        self.inspector = Inspector(worker)
        self.history = History()
        self.cache_s = cache_s
        self._overview: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Forget the cached overview (after an action, so the next poll shows it)."""
        self._overview = None

    # -- queues and workers ----------------------------------------------------------

    async def overview(self) -> dict[str, Any]:
        """Queue counts, totals, workers and the charts' history (sampled here)."""
        async with self._lock:
            cached = self._overview
            if cached is not None and time.monotonic() - cached[0] < self.cache_s:
                return cached[1]
            insp = self.inspector
            survey = await insp.survey()
            stats = survey.queues
            workers = await insp.workers()
            self.history.add(stats, workers)
            data = {
                "queues": to_jsonable(stats),
                "skipped": to_jsonable(survey.skipped),
                "totals": {
                    "ready": sum(q.ready for q in stats),
                    "scheduled": sum(q.scheduled for q in stats),
                    "running": sum(q.running for q in stats),
                    "dead": sum(q.dead for q in stats),
                    "workers": len(workers),
                    "jobs_per_s": round(sum(w.jobs_per_s for w in workers), 3),
                    "jobs_done": sum(w.jobs_done for w in workers),
                },
                "history": self.history.to_json(),
            }
            self._overview = (time.monotonic(), data)
            return data

    async def queues(self) -> dict[str, Any]:
        survey = await self.inspector.survey()
        return {"queues": to_jsonable(survey.queues), "skipped": to_jsonable(survey.skipped)}

    async def workers(self) -> dict[str, Any]:
        return {"workers": to_jsonable(await self.inspector.workers())}

    # -- jobs ------------------------------------------------------------------------

    async def jobs(
        self, state: str, queue: str | None, offset: int = 0, limit: int = 50
    ) -> dict[str, Any]:
        """A page of jobs in one state, of one queue or of every queue.

        Without a queue, the first ``limit`` jobs of each queue are merged (ready: in
        queue order; scheduled: soonest first; running: lease ending first; dead: newest
        first) and cut to ``limit``; ``total`` counts every queue.

        :raises ValueError: for an unknown state, a negative offset or a limit out of
            range, an offset without a queue, or a bad queue name.
        """
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}: use one of {', '.join(STATES)}")
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
        st: State = state  # narrowed by the check against STATES above
        insp = self.inspector
        if queue is not None:
            page = await insp.jobs(queue, st, offset=offset, limit=limit)
            total, found = page.total, page.jobs
        else:
            if offset:
                raise ValueError("offset needs a queue")
            pages, _skipped = await insp.pages(await insp.queue_names(), [st], limit=limit)
            total = sum(p.total for p in pages)
            found = _merge(st, (j for p in pages for j in p.jobs))[:limit]
        return {
            "state": state,
            "queue": queue,
            "total": total,
            "offset": offset,
            "jobs": [job_summary(j, self.show_args) for j in found],
        }

    async def job(self, queue: str | None, job_id: str) -> dict[str, Any] | None:
        """One job's detail, looked up in ``queue`` (or every known queue); None if
        nothing is stored about it."""
        insp = self.inspector
        if queue is None:
            detail = await insp.find(job_id)
        else:
            detail = await insp.job(queue, job_id)
        if detail.status is JobStatus.NOT_FOUND:
            return None
        return job_detail(detail, self.show_args)

    # -- features beside the core ----------------------------------------------------

    async def schedules(self) -> dict[str, Any]:
        """Periodic schedules with their next run (empty when the app has none)."""
        scheduler: Any = getattr(self.worker, "scheduler", None)  # absent: no cron support
        if scheduler is None or not scheduler.schedules:
            return {"schedules": []}
        infos = await scheduler.list()
        return {
            "schedules": [{**to_jsonable(s), "paused": s.paused} for s in infos],
        }

    async def batches(self, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """Batches newest first with their progress.

        :raises ValueError: for a limit out of range or a negative offset.
        """
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, offset at least 0")
        await self.worker.client.broker.connect()
        found = await self.worker.batches.list(limit=limit, offset=offset)
        return {
            "batches": [
                {**to_jsonable(b), "state": b.state, "finished": b.finished} for b in found
            ],
        }

    async def limiters(self) -> dict[str, Any]:
        """The limiters on the app's tasks, with their state when it can be read."""
        read = getattr(self.inspector, "limiters", None)
        if read is None:
            return {"limiters": []}
        return {"limiters": to_jsonable(await read())}


def _merge(state: State, jobs: Iterable[JobSummary]) -> list[JobSummary]:
    rows = list(jobs)
    if state == "ready":
        return rows
    far = 2**62

    def when(j: JobSummary) -> float:
        return j.at.timestamp() if j.at is not None else far

    return sorted(rows, key=when, reverse=state == "dead")
