"""What a running job sees of itself: ``JobContext``.

Checkpoints are stored as one JSON object ``{"u": <user state>, "s": {<step>: <value>}}``,
fenced by the job's lease: a worker that lost the lease cannot overwrite the state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .payload import dumps, loads
from .timeunits import ms_to_datetime

if TYPE_CHECKING:
    from .worker import Worker

__all__ = ("JobContext", "LeaseLost")

P = ParamSpec("P")
R = TypeVar("R")

Saver = Callable[[bytes], Awaitable[bool]]


class LeaseLost(Exception):
    """This worker no longer holds the job's lease: another worker may be running it."""


def decode_state(raw: bytes) -> tuple[Any, dict[str, Any]]:
    """Split a stored checkpoint into (user state, completed steps)."""
    if not raw:
        return None, {}
    data = loads(raw)
    if isinstance(data, dict) and "s" in data:
        return data.get("u"), dict(data["s"])
    return data, {}


class JobContext:
    """Passed as the first argument to every task.

    :ivar job_id: the job's id.
    :ivar task: the task's name.
    :ivar queue: the queue it came from.
    :ivar attempt: 1 for the first run; interrupted runs (shutdown) are not counted.
    :ivar max_attempts: retries + 1.
    :ivar enqueued_at: when it was enqueued (Redis time, UTC).
    :ivar shutting_down: set when the worker starts draining; long jobs may watch it,
        save a checkpoint and return early.
    """

    __slots__ = (
        "_saver",
        "_state",
        "_steps",
        "attempt",
        "enqueued_at",
        "job_id",
        "max_attempts",
        "queue",
        "shutting_down",
        "task",
        "worker",
    )

    def __init__(
        self,
        *,
        worker: Worker,
        job_id: str,
        task: str,
        queue: str,
        attempt: int,
        max_attempts: int,
        enqueued_ms: int,
        state: bytes,
        saver: Saver,
        shutting_down: asyncio.Event,
    ) -> None:
        self.worker = worker
        self.job_id = job_id
        self.task = task
        self.queue = queue
        self.attempt = attempt
        self.max_attempts = max_attempts
        self.enqueued_at: datetime = ms_to_datetime(enqueued_ms)
        self._state, self._steps = decode_state(state)
        self._saver = saver
        self.shutting_down = shutting_down

    @property
    def state(self) -> Any:
        """The last checkpointed state (``None`` if there is none)."""
        return self._state

    @property
    def is_resumption(self) -> bool:
        """True when an earlier run of this job left a checkpoint or completed steps."""
        return self._state is not None or bool(self._steps)

    def encoded_state(self) -> bytes:
        return dumps({"u": self._state, "s": self._steps})

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
        if not await self._saver(blob):
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
        self._steps[name] = value
        if not await self._saver(self.encoded_state()):
            raise LeaseLost(f"job {self.job_id}: lease lost, step {name!r} not recorded")
        return value
