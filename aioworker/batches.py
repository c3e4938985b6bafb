"""Batches: fan work out into many jobs and run callbacks once, when they have all finished.

How it stays exact on Redis Cluster, where a batch's children live in many queues (slots):

- A batch's own keys live under the hash tag ``{batch:<id>}`` (:class:`~aioworker.keys.
  BatchKeys`): a record with counters, a hash ``child id -> state`` and the set of failed
  children.  Nothing is ever read whole into Python: progress comes from the counters.
- A child carries the batch id in its payload (``b``).  When it finishes for good, the
  complete or dead script of its own queue appends ``<batch>|<job>|ok`` (or ``failed``) to
  that queue's batch outbox in the same step as the ack, so a crash cannot lose it.  A
  retry is not an outcome: only a completion or a dead letter counts.
- Workers drain the outboxes of the queues they serve (:mod:`aioworker.batch_runtime`).
  ``batch_apply`` moves each child at most once from pending to succeeded or failed (and
  from failed to succeeded when a dead child is re-run and succeeds), so an entry applied
  twice changes nothing.
- When a sealed batch has no pending child left, ``batch_apply`` marks its callbacks due
  and reserves each for one caller at a time.  The caller enqueues it with the job id
  ``<batch id>:on_complete`` / ``<batch id>:on_success`` (enqueueing an existing id creates
  nothing) and then marks it sent.  A caller that dies in between leaves the outbox entry
  claimed; the claim expires, the entry is applied again, and the callback is sent then.
- Adding children enqueues them first and registers them after; a child that finishes
  before its registration leaves an early mark that the registration counts.  A producer
  that dies between the two leaves children that run uncounted, never a batch that waits
  for children that were never enqueued.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import replace
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING

from .batch_progress import BatchOutcome, BatchProgress, CallbackState, outcome_of, progress_of
from .batch_scripts import BatchEvent, BatchScripts, DueCallback
from .bounds import check_seconds
from .errors import BatchCancelled, BatchNotFound, BatchSealed, ConfigError, ResultTimeout
from .job import JobSpec
from .keys import BatchKeys, RegistryKeys, validate_name
from .payload import dumps, encode_spec, loads
from .timeunits import Seconds, to_ms, to_seconds

if TYPE_CHECKING:
    from .client import Client

__all__ = (
    "Batch",
    "BatchOutcome",
    "BatchProgress",
    "CallbackState",
    "apply_events",
    "outcome_of",
    "validate_batch_id",
)

log = logging.getLogger("aioworker.batches")

DEFAULT_TTL = timedelta(days=7)
INDEX_MAX_AGE_MS = 90 * 86_400_000  # batches older than this drop out of ``batch list``
ADD_CHUNK = 1000  # children enqueued and registered per round trip


def _callback_spec(spec: JobSpec, max_bytes: int) -> bytes:
    """The stored form of a callback (the batch assigns its job id)."""
    encode_spec(spec, max_bytes)  # the same checks (JSON, size) as an enqueue
    return dumps(
        {
            "t": spec.task,
            "q": spec.queue,
            "a": spec.args,
            "k": spec.kwargs,
            "r": spec.retries,
            "o": spec.timeout_s,
            "d": spec.delay_ms,
        }
    )


def _callback_job(batch_id: str, due: DueCallback) -> JobSpec:
    data = loads(due.spec)
    return JobSpec(
        task=data["t"],
        queue=data["q"],
        args=tuple(data["a"]),
        kwargs=data["k"],
        job_id=f"{batch_id}:on_{due.name}",
        retries=data["r"],
        timeout_s=data["o"],
        delay_ms=data["d"],
        extra={"bc": {"id": batch_id, "cb": due.name, "n": due.snapshot}},
    )


async def apply_events(client: Client, batch_id: str, events: Sequence[BatchEvent]) -> list[int]:
    """Apply events to a batch and enqueue the callbacks that became due (at most once each).

    :returns: one result per event (see ``lua/batch_apply.lua``); empty if the batch is gone.
    """
    bs = BatchScripts(client.broker.scripts)
    keys = BatchKeys(client.prefix, batch_id)
    reply = await bs.batch_apply(keys, events)
    if reply.due:
        specs: list[JobSpec] = []
        for due in reply.due:
            try:
                specs.append(_callback_job(batch_id, due))
            except (ValueError, KeyError, TypeError) as exc:
                log.error(
                    "batch %s: stored %s callback cannot be read: %s", batch_id, due.name, exc
                )
        if specs:
            await client.enqueue(specs)
            log.info("batch %s: enqueued %s", batch_id, ", ".join(s.job_id or "" for s in specs))
        await bs.batch_apply(keys, [BatchEvent("sent", d.name) for d in reply.due])
    return reply.results


async def _aiter(specs: Iterable[JobSpec] | AsyncIterable[JobSpec]) -> AsyncIterator[JobSpec]:
    if isinstance(specs, AsyncIterable):
        async for spec in specs:
            yield spec
    else:
        for spec in specs:
            yield spec


def validate_batch_id(batch_id: str) -> str:
    """Check a chosen batch id (no braces, spaces, newlines or ``|``).

    :raises ValueError: for an id that would break the key schema or the outbox format.
    """
    validate_name("batch", batch_id)
    if "|" in batch_id:
        raise ValueError(f"invalid batch id {batch_id!r}: '|' is not allowed")
    return batch_id


class Batch:
    """A batch of jobs, and the callbacks that run once they have all finished.

    Made by ``worker.batch(...)``; a child job reaches its batch as ``ctx.batch``, and
    ``worker.batches.get(id)`` returns a handle to an existing batch.  The batch's record
    is created by the first :meth:`add` or :meth:`seal` (creating an existing id changes
    nothing, so a job that builds a batch with a chosen id can simply run again).

    ::

        async with worker.batch(on_complete=report.call(month), description=month) as batch:
            await batch.add(bill.call(company_id) for company_id in company_ids)
        # leaving the block seals the batch

    :ivar id: the batch id.
    :ivar outcome: in a callback job, the counts that made it due; else None.
    """

    def __init__(
        self,
        client: Client,
        batch_id: str,
        *,
        description: str = "",
        on_complete: JobSpec | None = None,
        on_success: JobSpec | None = None,
        ttl: Seconds = DEFAULT_TTL,
        caller: str = "",
        outcome: BatchOutcome | None = None,
        create: bool = False,
    ) -> None:
        self._client = client
        self.id = validate_batch_id(batch_id)
        self.description = description
        self.outcome = outcome
        self._caller = caller
        self._keys = BatchKeys(client.prefix, batch_id)
        self._scripts = BatchScripts(client.broker.scripts)
        self._ttl_ms = to_ms(check_seconds(ttl, "batch ttl", error=ConfigError))
        if self._ttl_ms < 60_000:
            raise ValueError("a batch's ttl must be at least 60 seconds")
        self._callbacks = {"complete": on_complete, "success": on_success}
        self._created = not create

    def __repr__(self) -> str:
        return f"<Batch {self.id}>"

    @property
    def keys(self) -> BatchKeys:
        return self._keys

    async def create(self) -> bool:
        """Create the batch's record if it does not exist yet (done by add/seal on their own).

        :returns: True if it was created now.
        :raises PayloadError: if a callback's arguments cannot be encoded.
        """
        if self._created:
            return False
        max_bytes = self._client.max_payload_bytes
        specs = {
            name: b"" if spec is None else _callback_spec(spec, max_bytes)
            for name, spec in self._callbacks.items()
        }
        index = RegistryKeys(self._client.prefix).batches
        await self._client.broker.connect()
        await self._scripts.batch_index_add(index, self.id, INDEX_MAX_AGE_MS)
        created, _ = await self._scripts.batch_create(
            self._keys, self.description, self._ttl_ms, specs["complete"], specs["success"]
        )
        self._created = True
        return created

    async def add(self, specs: Iterable[JobSpec] | AsyncIterable[JobSpec]) -> int:
        """Enqueue jobs as children of the batch (any tasks, any queues).

        Specs are taken lazily, ``ADD_CHUNK`` at a time, so a generator of 100,000 specs
        never sits in memory whole.  A spec's job id (``.options(job_id=...)``) makes the
        add idempotent: adding an id that is already a child changes nothing, so a job that
        adds children and runs again adds none twice.

        :returns: how many of them were new children.
        :raises BatchSealed: new children for a sealed batch, from outside the batch.
        :raises BatchCancelled: the batch was cancelled.
        :raises BatchNotFound: the batch does not exist (a handle that does not create).
        :raises PayloadError: arguments cannot be encoded (nothing of that chunk is sent).
        """
        await self.create()
        added = 0
        chunk: list[JobSpec] = []
        async for spec in _aiter(specs):
            chunk.append(spec)
            if len(chunk) >= ADD_CHUNK:
                added += await self._add_chunk(chunk)
                chunk = []
        if chunk:
            added += await self._add_chunk(chunk)
        return added

    async def _add_chunk(self, specs: list[JobSpec]) -> int:
        children = [
            replace(s, job_id=s.job_id or uuid.uuid4().hex, extra={**s.extra, "b": self.id})
            for s in specs
        ]
        ids = [s.job_id or "" for s in children]
        for spec in children:
            encode_spec(spec, self._client.max_payload_bytes)  # fail before anything is sent
        self._check(await self._scripts.batch_add(self._keys, self._caller, ids, check=True))
        await self._client.enqueue(children)
        return self._check(await self._scripts.batch_add(self._keys, self._caller, ids))

    def _check(self, code: int) -> int:
        if code == -1:
            raise BatchNotFound(f"no batch {self.id!r} (never created, or it expired)")
        if code == -2:
            raise BatchCancelled(f"batch {self.id!r} was cancelled")
        if code == -3:
            raise BatchSealed(
                f"batch {self.id!r} is sealed: only its own running jobs can add children"
            )
        return code

    async def seal(self) -> None:
        """Declare that no more children come from outside the batch.

        The callbacks can fire only once the batch is sealed (a batch with no children
        finishes at once).  Sealing twice is harmless.

        :raises BatchNotFound: the batch does not exist (a handle that does not create).
        """
        await self.create()
        queue = next((s.queue for s in self._callbacks.values() if s is not None), None)
        if queue is not None:
            # re-applied by a worker serving the callback's queue if this process dies
            # before the callbacks are enqueued
            await self._scripts.batch_outbox_push(self._client.keys(queue), [f"{self.id}||seal"])
        if not await apply_events(self._client, self.id, [BatchEvent("seal")]):
            raise BatchNotFound(f"no batch {self.id!r} (never created, or it expired)")

    async def cancel(self) -> bool:
        """Cancel the batch: children that have not started are skipped (never run),
        running ones finish, and callbacks that were not due yet never fire.

        :returns: True if it was cancelled now, False if it already was.
        :raises BatchNotFound: if there is no such batch.
        """
        results = await apply_events(self._client, self.id, [BatchEvent("cancel")])
        if not results:
            raise BatchNotFound(f"no batch {self.id!r} (never created, or it expired)")
        return results[0] == 1

    async def progress(self) -> BatchProgress:
        """The counters now (one read of the batch's record).

        :raises BatchNotFound: if there is no such batch.
        """
        info = await self._scripts.batch_info(self._keys)
        if not info.meta:
            raise BatchNotFound(f"no batch {self.id!r} (never created, or it expired)")
        return progress_of(self.id, info.meta)

    async def wait(self, timeout: Seconds | None = None) -> BatchProgress:  # noqa: ASYNC109
        """Wait until every child finished (or the batch was cancelled).

        Blocks on a marker the batch sets when it finishes, instead of polling.

        :param timeout: seconds to wait at most (``None`` waits for ever).
        :returns: the progress at that moment.
        :raises ResultTimeout: if it did not finish in time.
        :raises BatchNotFound: if there is no such batch.
        """
        deadline = None if timeout is None else time.monotonic() + to_seconds(timeout)
        while True:
            progress = await self.progress()
            if progress.finished or progress.cancelled:
                return progress
            remaining = 5.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise ResultTimeout(
                    f"batch {self.id} did not finish within {timeout} s "
                    f"({progress.pending} of {progress.total} pending)"
                )
            await self._client.broker.wait_marker(self._keys.done, min(remaining, 5.0))

    async def failed(self, page: int = 500) -> AsyncIterator[tuple[str, str]]:
        """The children that failed for good, as ``(queue, job id)``, a page at a time."""
        cursor = "0"
        while True:
            info = await self._scripts.batch_info(self._keys, cursor, page)
            for member in info.failed:
                queue, _, job_id = member.partition("|")
                yield queue, job_id
            cursor = info.cursor
            if cursor == "0":
                return

    async def retry_failed(self) -> int:
        """Run the failed children again (from the dead-letter sets, with fresh attempts).

        A re-run child that succeeds moves from failed to succeeded, and ``on_success``
        fires once no child has failed.

        :returns: how many were put back in their queues.
        """
        moved = 0
        batch: dict[str, list[str]] = {}
        async for queue, job_id in self.failed():
            batch.setdefault(queue, []).append(job_id)
            if sum(len(v) for v in batch.values()) >= 500:
                moved += await self._revive(batch)
                batch = {}
        return moved + await self._revive(batch)

    async def _revive(self, by_queue: dict[str, list[str]]) -> int:
        moved = 0
        for queue, ids in by_queue.items():
            moved += await self._client.retry_dead(queue, ids)
        return moved

    async def __aenter__(self) -> Batch:
        await self.create()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.seal()
        else:
            log.warning(
                "batch %s left open (not sealed) because adding children failed: %s; "
                "its callbacks fire only once it is sealed",
                self.id,
                exc,
            )
