"""What a running job sees of itself: ``JobContext``.

Checkpoints are stored as one JSON object
``{"u": <user state>, "s": {<step>: <value>}, "c": {<iteration>: <cursor>}}``, fenced by
the job's lease: a worker that lost the lease cannot overwrite the state.  Progress that
was made but not yet saved (an iteration's cursor between two checkpoints) is written
when the job is interrupted by a shutdown, together with the requeue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .errors import LeaseLost
from .payload import decode_state, encode_state
from .timeunits import ms_to_datetime

if TYPE_CHECKING:
    from .batches import Batch
    from .client import Client

__all__ = ("JobContext", "LeaseLost")

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

Saver = Callable[[bytes], Awaitable[bool]]
#: Finds the batch of a job from its id and payload (None when it is in no batch).
BatchLookup = Callable[[str, "dict[str, Any]"], "Batch | None"]

# the steps and cursors of every context that has none: read, never written
_UNSET: dict[str, Any] = {}


class JobContext:
    """Passed as the first argument to every task.

    :ivar job_id: the job's id.
    :ivar task: the task's name.
    :ivar queue: the queue it came from.
    :ivar attempt: 1 for the first run; interrupted runs (shutdown) are not counted.
    :ivar max_attempts: retries + 1.
    :ivar enqueued_at: when it was enqueued (Redis time, UTC).
    :ivar client: the worker's client, to enqueue follow-up jobs or look up others.
    :ivar shutting_down: set when the worker starts draining; long jobs may watch it,
        save a checkpoint and return early.
    """

    __slots__ = (
        "_batch_of",
        "_cursors",
        "_resumed",
        "_saver",
        "_state",
        "_steps",
        "attempt",
        "checkpoints",
        "client",
        "enqueued_ms",
        "items_done",
        "job_id",
        "max_attempts",
        "payload",
        "queue",
        "shutting_down",
        "task",
        "unsaved",
    )

    def __init__(
        self,
        *,
        client: Client,
        job_id: str,
        task: str,
        queue: str,
        attempt: int,
        max_attempts: int,
        enqueued_ms: int,
        state: bytes,
        saver: Saver,
        shutting_down: asyncio.Event,
        payload: dict[str, Any] | None = None,
        batch_of: BatchLookup | None = None,
    ) -> None:
        self.client = client
        self._batch_of = batch_of
        self.payload: dict[str, Any] = payload or {}  # the decoded payload, feature keys too
        self.job_id = job_id
        self.task = task
        self.queue = queue
        self.attempt = attempt
        self.max_attempts = max_attempts
        self.enqueued_ms = enqueued_ms
        if state:
            self._state, self._steps, self._cursors = decode_state(state)
        else:  # a first run: it gets dicts of its own at its first step or cursor
            self._state, self._steps, self._cursors = None, _UNSET, _UNSET
        self._resumed = self._state is not None or bool(self._steps) or bool(self._cursors)
        self._saver = saver
        self.shutting_down = shutting_down
        self.checkpoints = 0  # saved in this run
        self.items_done = 0  # items handed out by iterate() in this run
        self.unsaved = False  # progress made since the last checkpoint

    @property
    def batch(self) -> Batch | None:
        """The batch this job is a child of (add more children with ``ctx.batch.add``), or
        whose callback it is (``ctx.batch.outcome`` holds the counts); else None."""
        return None if self._batch_of is None else self._batch_of(self.job_id, self.payload)

    @property
    def enqueued_at(self) -> datetime:
        """When the job was enqueued (Redis time, UTC)."""
        return ms_to_datetime(self.enqueued_ms)

    @property
    def state(self) -> Any:
        """The last checkpointed state (``None`` if there is none)."""
        return self._state

    @property
    def is_resumption(self) -> bool:
        """True when an earlier run of this job left a checkpoint or completed steps."""
        return self._resumed  # fixed at the start: this run's own saves do not change it

    def encoded_state(self) -> bytes:
        return encode_state(self._state, self._steps, self._cursors)

    def progress(self) -> str:
        """How far this run got, for log lines."""
        parts = [f"{self.checkpoints} checkpoint(s) saved"]
        if self.items_done:
            parts.append(f"{self.items_done} item(s) iterated")
        if self._cursors:
            parts.append("cursor " + ", ".join(f"{k}={v!r}"[:80] for k, v in self._cursors.items()))
        if self._steps:
            parts.append(f"{len(self._steps)} step(s) done")
        return "; ".join(parts)

    async def _save(self, blob: bytes | None = None) -> bool:
        ok = await self._saver(self.encoded_state() if blob is None else blob)
        if ok:
            self.checkpoints += 1
            self.unsaved = False
        return ok

    async def checkpoint(self, state: Any) -> None:
        """Save ``state`` (anything orjson encodes) so a later run resumes from it.

        :raises TypeError: if the state cannot be encoded as JSON.
        :raises LeaseLost: if this worker no longer holds the job's lease.
        """
        previous = self._state
        self._state = state
        try:
            blob = self.encoded_state()
        except TypeError:
            self._state = previous
            raise
        if not await self._save(blob):
            raise LeaseLost(f"job {self.job_id}: lease lost, checkpoint not saved")

    def step_done(self, name: str) -> bool:
        """Whether step ``name`` completed in this or an earlier run."""
        return name in self._steps

    async def step(
        self, name: str, fn: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run ``fn`` once across runs of this job: an idempotent step.

        If step ``name`` completed in an earlier run, ``fn`` is not called and the value
        it returned then is returned again.  Otherwise ``fn`` runs, and its result (which
        must be JSON-encodable) is checkpointed together with the step's name.

        :raises LeaseLost: if the completion could not be recorded.
        """
        if name in self._steps:
            value: R = self._steps[name]
            return value
        value = await fn(*args, **kwargs)
        if self._steps is _UNSET:
            self._steps = {}
        self._steps[name] = value
        try:
            blob = self.encoded_state()
        except TypeError:
            del self._steps[name]  # keep later checkpoints encodable
            raise
        if not await self._save(blob):
            raise LeaseLost(f"job {self.job_id}: lease lost, step {name!r} not recorded")
        return value

    def cursor(self, name: str = "default") -> Any:
        """The saved cursor of iteration ``name`` (None before the first checkpoint)."""
        return self._cursors.get(name)

    def _set_cursor(self, name: str, value: Any) -> None:
        if self._cursors is _UNSET:
            self._cursors = {}
        self._cursors[name] = value
        self.unsaved = True

    async def iterate(
        self,
        source: Callable[[Any], AsyncIterable[T]],
        *,
        key: Callable[[T], Any],
        name: str = "default",
        every: int = 100,
        every_s: float = 5.0,
    ) -> AsyncIterator[T]:
        """Iterate a large collection so that an interrupted job resumes where it stopped.

        ``source(cursor)`` must yield the items *after* ``cursor`` (all items when the
        cursor is None); ``key(item)`` gives an item's cursor (JSON-encodable).  After the
        body of the loop has handled an item, its cursor becomes the iteration's
        position; the position is checkpointed every ``every`` items or ``every_s``
        seconds, at the end, and when a shutdown interrupts the job.  A re-run (after a
        deploy or a crash) starts from the last saved position::

            async for row in ctx.iterate(lambda after: db.rows(after=after), key=lambda r: r.id):
                await handle(row)

        :raises LeaseLost: if a checkpoint cannot be saved because the lease was lost.
        """
        if every < 1 or every_s <= 0:
            raise ValueError("every must be >= 1 and every_s > 0")
        since, last_save = 0, time.monotonic()
        pending: T | None = None
        has_pending = False
        async for item in source(self._cursors.get(name)):
            if has_pending:
                self._set_cursor(name, key(pending))  # type: ignore[arg-type]
                since += 1
                if since >= every or time.monotonic() - last_save >= every_s:
                    if not await self._save():
                        raise LeaseLost(f"job {self.job_id}: lease lost, cursor not saved")
                    since, last_save = 0, time.monotonic()
            pending, has_pending = item, True
            self.items_done += 1
            yield item
        if has_pending:
            self._set_cursor(name, key(pending))  # type: ignore[arg-type]
            if not await self._save():
                raise LeaseLost(f"job {self.job_id}: lease lost, cursor not saved")
