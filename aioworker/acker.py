"""Durable outcome writes: batched acks, and retries of writes while Redis is away.

A finished job's ack is only reported done once Redis has it.  While one batch is in
flight the next acks gather, so under load many jobs are acknowledged by one script
call (group commit), and at low load an ack goes out at once.  A write that fails
because Redis is unreachable is retried with backoff, never dropped, until the
worker's final deadline; a job whose write never landed is recovered by another worker
when its lease expires, so it is not lost either way.  A flush that fails otherwise (Redis
refuses the script, e.g. an ACL rule taken away) keeps its batch: the flusher is restarted
with backoff and writes it again, so a finished job is not run a second time for want of
its ack.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from .broker import TRANSIENT_ERRORS
from .supervisor import Spawn, restarting

__all__ = ("Acker", "Durable")

log = logging.getLogger("aioworker.worker")

T = TypeVar("T")
Item = TypeVar("Item")


class Durable:
    """Repeats a Redis write through connection loss, until a deadline.

    :param on_down: called with the error each time a write fails (for logging once).
    :param on_up: called when a write succeeds after a failure.
    """

    def __init__(self, on_down: Callable[[BaseException], None], on_up: Callable[[], None]) -> None:
        self.deadline: float | None = None  # time.monotonic() after which writes give up
        self._on_down = on_down
        self._on_up = on_up

    async def __call__(self, what: str, fn: Callable[[], Awaitable[T]]) -> T | None:
        delay = 0.05
        while True:
            try:
                result = await fn()
            except TRANSIENT_ERRORS as exc:
                self._on_down(exc)
                if self.deadline is not None and time.monotonic() + delay > self.deadline:
                    log.error("could not %s before the shutdown deadline: %s", what, exc)
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            else:
                self._on_up()
                return result


class Acker(Generic[Item]):
    """Group commit of acks for one queue.

    :param write: writes a batch and returns one flag per item (False: lease lost).
    :param durable: the retrying write wrapper.
    :param name: the flusher's name in logs (``acks:<queue>``).
    :param spawn: starts the flusher, restarted when it fails (the runtime's supervisor).
    """

    def __init__(
        self,
        write: Callable[[Sequence[Item]], Awaitable[list[bool]]],
        durable: Durable,
        max_batch: int = 500,
        *,
        name: str = "acks",
        spawn: Spawn = restarting,
    ) -> None:
        self._write = write
        self._durable = durable
        self._max_batch = max_batch
        self._name = name
        self._spawn = spawn
        self._pending: list[tuple[Item, asyncio.Future[bool | None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def ack(self, item: Item) -> bool | None:
        """Write one ack (batched with others); True written, False lease lost, None gave up."""
        fut: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        if self._flusher is None:
            self._flusher = self._spawn(self._name, self._flush)
            self._flusher.add_done_callback(self._ended)
        return await fut

    @property
    def pending(self) -> int:
        """Acks held and not yet written."""
        return len(self._pending)

    @staticmethod
    def _past(deadline: float | None) -> bool:
        return deadline is not None and time.monotonic() >= deadline

    def _ended(self, task: asyncio.Task[None]) -> None:
        if self._flusher is task:  # cancelled: the next ack starts a flusher again
            self._flusher = None

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            items = [item for item, _ in batch]
            try:
                flags = await self._durable(
                    "acknowledge finished jobs", functools.partial(self._write, items)
                )
            except BaseException as exc:
                deadline = self._durable.deadline
                if isinstance(exc, Exception) and self._past(deadline):
                    for _, fut in batch:  # shutting down: give up, as the other writes do
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                self._pending[:0] = batch  # kept: the restarted flusher writes it again
                raise
            for n, (_, fut) in enumerate(batch):
                if not fut.done():
                    fut.set_result(None if flags is None else flags[n])
        # no await since the loop's test: an ack added from now on starts a new flusher
        self._flusher = None
