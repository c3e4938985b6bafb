"""The worker side of batches: ``worker.batches``.

- A gate, run before every job, skips the children of a cancelled batch (one short script
  call per batch child; jobs that are not batch children cost nothing).
- An observer wakes the outbox drain as soon as this process finished a batch child.
- A service drains the batch outboxes of the queues this process serves: it claims up to
  ``DRAIN_CHUNK`` entries at a time (claims expire after ``CLAIM_MS``, so entries of a
  drainer that died are handed out again), applies them to their batches, enqueues the
  callbacks that became due, and then reports the entries handled.  A process drains
  right after it finished a batch child; besides, it looks every ``POLL_S`` seconds for
  entries that a process which died left behind (an idle worker costs one script call per
  queue per ``POLL_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .batch_scripts import BatchEvent, BatchScripts
from .batches import DEFAULT_TTL, Batch, BatchProgress, apply_events, outcome_of
from .broker import TRANSIENT_ERRORS
from .errors import BatchNotFound, Skip
from .job import JobRecord, JobSpec
from .keys import RegistryKeys
from .timeunits import Seconds

if TYPE_CHECKING:
    from .client import Client
    from .extensions import Gate, Observer, RunContext, Service
    from .settings import Settings

__all__ = ("BatchHost", "Batches")

log = logging.getLogger("aioworker.batches")

POLL_S = 5.0
CLAIM_MS = 30_000
DRAIN_CHUNK = 500
_EVENTS = {"ok", "failed", "skipped", "seal"}


def parse_entry(entry: str) -> tuple[str, str, str] | None:
    """``<batch>|<job id>|<event>`` -> (batch, job id, event); None if malformed.

    The batch id has no ``|``; a job id may, so the event is what follows the last one.
    """
    batch, sep, rest = entry.partition("|")
    job_id, sep2, event = rest.rpartition("|")
    if not (sep and sep2 and batch) or event not in _EVENTS:
        return None
    return batch, job_id, event


class _SkipCancelled:
    """Gate: a child of a cancelled batch completes without running.

    Children of one batch that start together in this process share one in-flight check
    (a fetch leases many at once); only the children of a cancelled batch then mark
    themselves skipped, one script call each.
    """

    def __init__(self, batches: Batches) -> None:
        self._batches = batches
        self._checks: dict[str, asyncio.Future[bool]] = {}

    async def enter(self, job: JobRecord) -> float | None:
        batch_id = job.payload.get("b")
        if not isinstance(batch_id, str) or not batch_id:
            return None
        try:
            if not await self._cancelled(batch_id):
                return None
            event = BatchEvent("skip", job.id, job.queue)
            results = await apply_events(self._batches.client, batch_id, [event])
        except TRANSIENT_ERRORS:
            return 1.0  # Redis is away: try again in a second, without using an attempt
        if results and results[0] == 1:
            raise Skip(f"its batch {batch_id} was cancelled")
        return None

    async def _cancelled(self, batch_id: str) -> bool:
        check = self._checks.get(batch_id)
        if check is None:
            check = asyncio.ensure_future(self._check(batch_id))
            self._checks[batch_id] = check
            check.add_done_callback(lambda _: self._checks.pop(batch_id, None))
        return await asyncio.shield(check)

    async def _check(self, batch_id: str) -> bool:
        results = await apply_events(self._batches.client, batch_id, [BatchEvent("check")])
        return bool(results and results[0] == 1)

    async def exit(self, job: JobRecord, outcome: str) -> None:
        return None


class _Wake:
    """Observer: a batch child finished here, so its outbox entry is ready to drain."""

    def __init__(self, batches: Batches) -> None:
        self._batches = batches

    def job_started(self, job: JobRecord) -> None:
        return None

    def job_finished(self, job: JobRecord, outcome: str, duration_s: float) -> None:
        if outcome in ("complete", "dead", "cancel") and job.payload.get("b"):
            self._batches.kick()


class BatchHost(Protocol):
    """What batch support needs of its worker: the client, and the lists of gates,
    observers and services it adds its own to."""

    gates: list[Gate]
    observers: list[Observer]
    services: list[Service]

    @property
    def client(self) -> Client: ...

    @property
    def settings(self) -> Settings: ...


class Batches:
    """Batch support of one :class:`~aioworker.worker.Worker` (``worker.batches``).

    Registers a gate, an observer and the outbox drain service on the worker.
    """

    def __init__(self, host: BatchHost) -> None:
        self._host = host
        self._kick: asyncio.Event | None = None
        host.gates.append(_SkipCancelled(self))
        host.observers.append(_Wake(self))
        host.services.append(self.drain)

    @property
    def client(self) -> Client:
        return self._host.client

    def new(
        self,
        *,
        on_complete: JobSpec | None = None,
        on_success: JobSpec | None = None,
        description: str = "",
        batch_id: str | None = None,
        ttl: Seconds = DEFAULT_TTL,
    ) -> Batch:
        """A new batch (see :meth:`Worker.batch`)."""
        return Batch(
            self.client,
            batch_id or uuid.uuid4().hex,
            description=description,
            on_complete=on_complete,
            on_success=on_success,
            ttl=ttl,
            create=True,
        )

    def get(self, batch_id: str) -> Batch:
        """A handle to an existing batch (nothing is created; reads raise BatchNotFound)."""
        return Batch(self.client, batch_id)

    def of_job(self, job_id: str, payload: dict[str, Any]) -> Batch | None:
        """The batch a job is a child of, or whose callback it is (``ctx.batch``)."""
        batch_id = payload.get("b")
        if isinstance(batch_id, str) and batch_id:
            return Batch(self.client, batch_id, caller=job_id)
        outcome = outcome_of(payload)
        if outcome is not None:
            return Batch(self.client, str(payload["bc"]["id"]), outcome=outcome)
        return None

    async def list(self, limit: int = 50, offset: int = 0) -> list[BatchProgress]:
        """Batches newest first, with their progress (ids whose keys expired are dropped)."""
        bs = BatchScripts(self.client.broker.scripts)
        index = RegistryKeys(self.client.prefix).batches
        await self.client.broker.connect()
        found: list[BatchProgress] = []
        gone: list[str] = []
        for batch_id, _ in await bs.batch_index_list(index, offset, limit):
            try:
                found.append(await self.get(batch_id).progress())
            except BatchNotFound:
                gone.append(batch_id)
        if gone:
            await bs.batch_index_remove(index, gone)
        return found

    # -- the outbox drain ------------------------------------------------------------

    def kick(self) -> None:
        """Drain now rather than at the next poll."""
        if self._kick is not None:
            self._kick.set()

    async def drain(self, run: RunContext) -> None:
        """Service: drain the batch outboxes of the queues ``run`` serves, for ever."""
        kick = self._kick = asyncio.Event()
        kick.set()  # at start: whatever an earlier process left behind
        queues = list(run.queues)
        down = False
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await kick.wait()
            kick.clear()
            try:
                await asyncio.gather(*(self.drain_queue(q) for q in queues))
            except TRANSIENT_ERRORS as exc:
                if not down:
                    log.warning("batch outbox drain paused, Redis unavailable: %s", exc)
                down = True
                await asyncio.sleep(POLL_S)
            except Exception:
                log.exception("batch outbox drain failed; trying again in %.0f s", POLL_S)
                await asyncio.sleep(POLL_S)
            else:
                down = False

    async def drain_queue(self, queue: str) -> int:
        """Apply every entry of one queue's outbox; returns how many were handled."""
        client = self.client
        bs = BatchScripts(client.broker.scripts)
        k = client.keys(queue)
        done = 0
        handled: list[str] = []
        while True:
            entries = await bs.batch_outbox_claim(k, DRAIN_CHUNK, CLAIM_MS, handled)
            if not entries:
                return done
            await self._apply(queue, entries)
            done += len(entries)
            handled = entries
            if len(entries) < DRAIN_CHUNK:
                await bs.batch_outbox_claim(k, 0, CLAIM_MS, handled)
                return done

    async def _apply(self, queue: str, entries: Sequence[str]) -> None:
        by_batch: dict[str, list[BatchEvent]] = defaultdict(list)
        for entry in entries:
            parsed = parse_entry(entry)
            if parsed is None:
                log.warning("dropping a malformed batch outbox entry of queue %s: %r", queue, entry)
                continue
            batch_id, job_id, event = parsed
            by_batch[batch_id].append(BatchEvent(event, job_id, queue))
        await asyncio.gather(
            *(apply_events(self.client, b, events) for b, events in by_batch.items())
        )
