"""Durable outcome writes: batched acks, and retries of writes while Redis is away.

A finished job's ack is only reported done once Redis has it.  While one batch is in
flight the next acks gather, so under load many jobs are acknowledged by one script
call (group commit), and at low load an ack goes out at once.  A write that fails
because Redis is unreachable is retried with backoff, never dropped, until the
worker's final deadline; a job whose write never landed is recovered by another worker
when its lease expires, so it is not lost either way.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from .broker import TRANSIENT_ERRORS
from .supervisor import log_failure

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
    """

    def __init__(
        self,
        write: Callable[[Sequence[Item]], Awaitable[list[bool]]],
        durable: Durable,
        max_batch: int = 500,
    ) -> None:
        self._write = write
        self._durable = durable
        self._max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[bool | None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def ack(self, item: Item) -> bool | None:
        """Write one ack (batched with others); True written, False lease lost, None gave up."""
        fut: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="acks")
            self._flusher.add_done_callback(log_failure)
        return await fut

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                items = [item for item, _ in batch]
                try:
                    flags = await self._durable(
                        "acknowledge finished jobs", functools.partial(self._write, items)
                    )
                except Exception as exc:
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for n, (_, fut) in enumerate(batch):
                    if not fut.done():
                        fut.set_result(None if flags is None else flags[n])
        finally:
            self._flusher = None
