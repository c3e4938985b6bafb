"""Operator actions on queues and jobs, for the CLI and dashboards.

Each action is one script call (or a few, a page at a time) and returns plain values:

- :meth:`Admin.pause` / :meth:`Admin.resume` a queue: while paused, workers lease none of
  its jobs; running jobs go on, enqueues are accepted, due scheduled jobs become ready;
- :meth:`Admin.cancel` a job (semantics in :mod:`aioworker.cancellation`);
- :meth:`Admin.retry_dead` / :meth:`Admin.purge_dead`: all, by id or by task;
- :meth:`Admin.enqueue` a job by task name with JSON arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .arity import pieces
from .cancellation import cancel
from .errors import UnknownTaskError
from .inspect import InspectHost, Inspector
from .keys import QueueKeys, validate_name

if TYPE_CHECKING:
    from .handle import JobHandle
    from .scripts import Scripts

__all__ = ("Admin", "CancelResult", "pause", "purge")

#: Ids handed to one revive or purge script call.
CHUNK = 500


async def pause(scripts: Scripts, k: QueueKeys, paused: bool) -> bool:
    """Pause (True) or resume (False) a queue; returns whether its state changed."""
    return bool(await scripts.run("pause", [k.paused, k.wake], [1 if paused else 0]))


async def purge(scripts: Scripts, k: QueueKeys, job_ids: Sequence[str]) -> int:
    """Delete dead-lettered jobs for good; returns how many were deleted (in several
    calls, each atomic, for more ids than fit in one command)."""
    n = 0
    for piece in pieces(job_ids, 6, 3):  # 6 keys; 2 keys + the id per job
        keys = [k.dead, k.jobs, k.attempts, k.state, k.errors]
        for job_id in piece:
            keys += [k.result(job_id), k.done(job_id)]
        keys.append(k.group_of)
        n += int(await scripts.run("purge", keys, list(piece)))
    return n


@dataclass(frozen=True, slots=True)
class CancelResult:
    """What a cancel did.

    :ivar outcome: ``cancelled`` (removed from its queue now), ``requested`` (running:
        its worker cancels it at its next check), ``dead`` or ``finished`` (left alone),
        ``missing`` (no such job).
    :ivar where: where the job was: ``queued``, ``scheduled``, ``running``, ``dead``,
        ``finished`` or ``missing``.
    """

    id: str
    queue: str
    outcome: str
    where: str


class Admin:
    """Operator actions for one app.

    :param worker: the app's :class:`~aioworker.Worker` (its settings and connection).
    """

    def __init__(self, worker: InspectHost) -> None:
        self.worker = worker
        self.client = worker.client
        self.scripts = self.client.broker.scripts
        self.inspector = Inspector(worker)

    def keys(self, queue: str) -> QueueKeys:
        return self.client.keys(validate_name("queue", queue))

    async def pause(self, queue: str) -> bool:
        """Pause a queue; returns False if it was paused already."""
        await self.client.broker.connect()
        return await pause(self.scripts, self.keys(queue), True)

    async def resume(self, queue: str) -> bool:
        """Resume a paused queue; returns False if it was not paused."""
        await self.client.broker.connect()
        return await pause(self.scripts, self.keys(queue), False)

    async def cancel(self, queue: str, job_id: str) -> CancelResult:
        """Cancel one job (see :mod:`aioworker.cancellation`)."""
        await self.client.broker.connect()
        outcome, where = await cancel(
            self.scripts, self.keys(queue), job_id, self.worker.settings.result_ttl_ms
        )
        return CancelResult(job_id, queue, outcome, where)

    async def dead_ids(self, queue: str, task: str | None = None) -> list[str]:
        """Ids of a queue's dead-lettered jobs, optionally only those of one task."""
        await self.client.broker.connect()
        rows = await self.inspector.iter_ids(queue, "dead")
        return [job_id for job_id, t in rows if task is None or t == task]

    async def retry_dead(
        self, queue: str, job_ids: Sequence[str] | None = None, *, task: str | None = None
    ) -> int:
        """Put dead-lettered jobs back in their queue with fresh attempts.

        :param job_ids: these jobs; None for all (or all of ``task``).
        :param task: only the jobs of this task.
        :returns: how many were moved (ids not dead-lettered are skipped).
        """
        await self.client.broker.connect()
        ids = list(job_ids) if job_ids is not None else await self.dead_ids(queue, task)
        k = self.keys(queue)
        moved = 0
        for start in range(0, len(ids), CHUNK):
            moved += await self.scripts.revive(k, ids[start : start + CHUNK])
        return moved

    async def purge_dead(
        self, queue: str, job_ids: Sequence[str] | None = None, *, task: str | None = None
    ) -> int:
        """Delete dead-lettered jobs for good (their recorded failure too).

        :param job_ids: these jobs; None for all (or all of ``task``).
        :param task: only the jobs of this task.
        :returns: how many were deleted.
        """
        await self.client.broker.connect()
        ids = list(job_ids) if job_ids is not None else await self.dead_ids(queue, task)
        k = self.keys(queue)
        n = 0
        for start in range(0, len(ids), CHUNK):
            n += await purge(self.scripts, k, ids[start : start + CHUNK])
        return n

    async def enqueue(
        self,
        task: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        delay_s: float | None = None,
        job_id: str | None = None,
    ) -> JobHandle[Any]:
        """Enqueue a job of a registered task by name.

        :raises UnknownTaskError: if the app has no such task.
        :raises EnqueueError: if the arguments do not fit the task's signature.
        """
        t = self.worker.tasks.get(task)
        if t is None:
            known = ", ".join(sorted(self.worker.tasks)) or "none"
            raise UnknownTaskError(f"no task named {task!r} (known: {known})")
        if queue is not None:
            validate_name("queue", queue)
        t = t.options(queue=queue, delay=delay_s, job_id=job_id)
        return await t.enqueue(*args, **(kwargs or {}))
