"""Cancelling jobs on an operator's request (``aioworker cancel``, dashboards).

Semantics, by where the job is when the request arrives (all in one script, atomically):

- **queued or scheduled**: removed from its queue at once, its data deleted, and marked
  ``cancelled`` (its status reads :attr:`~aioworker.JobStatus.CANCELLED` for the result
  TTL; ``job.result()`` raises :class:`~aioworker.JobCancelled`);
- **running**: a cancel request is stored in the queue's ``cancel`` hash.  Every worker
  checks that hash beside its heartbeat (every ``lease_timeout / 4``, one script call per
  queue it runs jobs of); the worker running the job cancels the job's asyncio task
  (``CancelledError`` at its next ``await``, like any asyncio cancellation: ``finally``
  blocks run, a job that swallows the cancellation and returns completes normally), then
  records it as ``cancelled`` and releases its lease.  No retry, no dead letter;
- **running on a worker that died** (lease expired): cancelled at once;
- **dead-lettered**: left alone (use ``aioworker dead purge``); **finished**: left alone.

A request that arrives while the job sits between two runs (waiting for a retry, or
requeued by a shutdown) stays pending and is acted on as soon as a worker starts the job
again; running ``cancel`` again removes it from its queue at once.  Requests of jobs
that no longer exist are dropped by the workers' checks.  While a worker drains on
SIGTERM it no longer checks for requests (its jobs are requeued, and cancelled on their
next start).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .broker import TRANSIENT_ERRORS
from .job import JobRecord
from .keys import QueueKeys
from .reply import text

if TYPE_CHECKING:
    from .extensions import RunContext, RunView
    from .scripts import Scripts

__all__ = ("CancelWatcher", "cancel", "cancel_done", "cancel_poll")

log = logging.getLogger("aioworker.worker")


async def cancel(
    scripts: Scripts, k: QueueKeys, job_id: str, result_ttl_ms: int
) -> tuple[str, str]:
    """Cancel one job (see the module docstring).

    :returns: ``(outcome, where)``: outcome ``cancelled``, ``requested``, ``dead``,
        ``finished`` or ``missing``; where it was: ``queued``, ``scheduled``, ``running``,
        ``dead``, ``finished`` or ``missing``.
    """
    keys = [
        k.ready,
        k.scheduled,
        k.active,
        k.dead,
        k.jobs,
        k.attempts,
        k.leases,
        k.state,
        k.errors,
        k.cancel,
        k.result(job_id),
        k.done(job_id),
        k.batch_outbox,
        k.fair,
        k.groups,
        k.group_of,
    ]
    outcome, where = await scripts.run("cancel", keys, [job_id, result_ttl_ms])
    return text(outcome), text(where)


async def cancel_poll(scripts: Scripts, k: QueueKeys) -> list[str]:
    """Ids of the queue's jobs with a pending cancel request."""
    reply = await scripts.run("cancel_poll", [k.cancel, k.jobs], [])
    return [text(x) for x in reply]


async def cancel_done(
    scripts: Scripts, k: QueueKeys, job_id: str, token: str, result: bytes, result_ttl_ms: int
) -> bool:
    """Record a running job as cancelled, fenced by its lease token.

    :returns: False if the lease was lost (nothing changed).
    """
    keys = [
        k.active,
        k.leases,
        k.jobs,
        k.attempts,
        k.state,
        k.errors,
        k.cancel,
        k.result(job_id),
        k.done(job_id),
        k.batch_outbox,
        k.group_of,
        k.groups,
    ]
    return bool(await scripts.run("cancel_done", keys, [job_id, token, result, result_ttl_ms]))


class CancelWatcher:
    """Checks for cancel requests of the jobs a runtime runs, and cancels those jobs.

    It is an :class:`~aioworker.extensions.Observer` (to know which jobs are inside their
    function, where a cancellation is safe) and its :meth:`run` is a
    :data:`~aioworker.extensions.Service`.
    """

    def __init__(self, runtime: RunView) -> None:
        self.runtime = runtime
        self.interval_s = runtime.settings.heartbeat_s
        self._inside: set[str] = set()

    def job_started(self, job: JobRecord) -> None:
        self._inside.add(job.id)

    def job_finished(self, job: JobRecord, outcome: str, duration_s: float) -> None:
        self._inside.discard(job.id)

    async def run(self, run: RunContext) -> None:
        """The service: check every heartbeat until cancelled."""
        while True:
            await asyncio.sleep(self.interval_s)
            await self.check()

    async def check(self) -> int:
        """Check once; returns how many jobs were cancelled now."""
        rt = self.runtime
        queues = {run.queue for run in rt.running.values()}
        n = 0
        for q in queues:
            try:
                ids = await cancel_poll(rt.broker.scripts, rt.keys[q])
            except TRANSIENT_ERRORS:
                continue  # the runtime reports outages; try again next time
            for job_id in ids:
                run = rt.running.get(job_id)
                if (
                    run is None
                    or job_id not in self._inside
                    or not run.executing
                    or run.task is None
                    or run.cancel
                ):
                    continue
                run.cancel = True
                run.task.cancel()
                n += 1
                log.warning(
                    "job %s %s: cancelling at an operator's request",
                    job_id,
                    run.task_name,
                    extra={
                        "job_id": job_id,
                        "task": run.task_name,
                        "queue": run.queue,
                        "attempt": run.attempt,
                        "event": "cancel_requested",
                    },
                )
        return n
