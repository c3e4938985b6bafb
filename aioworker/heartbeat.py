"""The heartbeat: renews the leases of the jobs a worker is running.

Every ``heartbeat_s`` one ``extend`` script call per queue pushes the lease deadlines of
its running jobs forward, so only a dead worker's jobs are recovered by others, never a
long job of a live one.  A job whose lease was taken over while it still runs (the worker
was out of touch for longer than the lease) is marked and logged once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from .broker import TRANSIENT_ERRORS
from .keys import QueueKeys
from .logfields import event_fields
from .redis_errors import ResponseError
from .running import Running
from .scripts import Scripts
from .supervisor import Spawn

__all__ = ("Heartbeat",)

log = logging.getLogger("aioworker.worker")


class Heartbeat:
    """Renews the leases of ``running`` every ``every_s`` while started.

    :param running: job id -> the run this worker is executing (shared with the runtime).
    :param scripts: the broker's scripts.
    :param keys: queue -> its keys.
    :param lease_ms: how far each renewal pushes a lease.
    :param every_s: seconds between renewals.
    :param on_error: told of a Redis error (the renewal is tried again next beat).
    """

    def __init__(
        self,
        running: Mapping[str, Running],
        scripts: Scripts,
        keys: Mapping[str, QueueKeys],
        *,
        lease_ms: int,
        every_s: float,
        on_error: Callable[[BaseException], None],
    ) -> None:
        self._running = running
        self._scripts = scripts
        self._keys = keys
        self._lease_ms = lease_ms
        self._every_s = every_s
        self._on_error = on_error
        self._task: asyncio.Task[None] | None = None

    def start(self, spawn: Spawn | None = None) -> None:
        """Start renewing; ``spawn(name, loop)`` starts the loop (e.g. supervised)."""
        if spawn is None:
            self._task = asyncio.create_task(self._loop(), name="heartbeat")
        else:
            self._task = spawn("heartbeat", self._loop)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    @property
    def alive(self) -> bool:
        """True while the renewals run (False before start and once the loop ended)."""
        return self._task is not None and not self._task.done()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            await self.beat()

    async def beat(self) -> None:
        """Renew the leases of every running job (one script call per queue)."""
        by_queue: dict[str, list[tuple[str, str]]] = {}
        for run in self._running.values():
            if not run.lease_lost:
                by_queue.setdefault(run.queue, []).append((run.job_id, run.token))
        for q, held in by_queue.items():
            try:
                lost = await self._scripts.extend(self._keys[q], self._lease_ms, held)
            except TRANSIENT_ERRORS as exc:
                self._on_error(exc)
                continue
            except ResponseError as exc:  # e.g. a key of the wrong type: try at the next beat
                log.error("could not renew the leases of queue %s: Redis refused it: %s", q, exc)
                continue
            for job_id in lost:
                run_lost = self._running.get(job_id)
                # a job whose outcome was written while the renewal was in flight has
                # released its lease itself: only a still-executing job has lost it
                if run_lost is not None and run_lost.executing and not run_lost.lease_lost:
                    run_lost.lease_lost = True
                    log.warning(
                        "job %s %s: lease lost (this worker was out of touch too long); "
                        "another worker may run it",
                        job_id,
                        run_lost.task_name,
                        extra=event_fields(run_lost, "lease_lost"),
                    )
