"""Busy/idle lifecycle hooks, for scale-in protection while jobs run.

The worker is *busy* while it runs at least one job that counts (every job, or only
jobs of tasks declared ``interruptible=False``, as chosen by ``protect``).  Hooks run
one at a time in a background task, only on transitions, and the switch to idle waits
``idle_delay_s`` so a short gap between two jobs does not flap the platform's setting.
A failing hook is logged and does not stop the worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from .settings import Protect
from .supervisor import Spawn, restarting

__all__ = ("BusyTracker", "Hook", "Protect")

log = logging.getLogger("aioworker.worker")

Hook = Callable[[], Awaitable[None]]


class BusyTracker:
    """Counts the jobs that keep the worker busy and calls the hooks on transitions."""

    def __init__(
        self,
        on_busy: Sequence[Hook],
        on_idle: Sequence[Hook],
        idle_delay_s: float = 1.0,
    ) -> None:
        self._on_busy = on_busy
        self._on_idle = on_idle
        self._idle_delay_s = idle_delay_s
        self._count = 0
        self._reported_busy = False
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._on_busy or self._on_idle)

    def start(self, spawn: Spawn = restarting) -> None:
        """Start the hooks loop; ``spawn(name, loop)`` starts it (supervised in a runtime)."""
        if self.enabled and self._task is None:
            self._task = spawn("busy-hooks", self._loop)

    def job_started(self) -> None:
        self._count += 1
        if self._count == 1:
            self._changed.set()

    def job_finished(self) -> None:
        self._count -= 1
        if self._count == 0:
            self._changed.set()

    async def stop(self) -> None:
        """Report idle one last time if needed, then stop."""
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        if self._reported_busy:
            await self._call(self._on_idle, "on_idle")
            self._reported_busy = False

    async def _loop(self) -> None:
        self._changed.set()  # (re)started: look at the count, it may have changed meanwhile
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._count > 0 and not self._reported_busy:
                self._reported_busy = True
                await self._call(self._on_busy, "on_busy")
            elif self._count == 0 and self._reported_busy:
                try:
                    await asyncio.wait_for(self._changed.wait(), self._idle_delay_s)
                    continue  # something changed during the delay: look again
                except TimeoutError:
                    pass
                if self._count == 0:
                    self._reported_busy = False
                    await self._call(self._on_idle, "on_idle")

    async def _call(self, hooks: Sequence[Hook], what: str) -> None:
        for hook in hooks:
            try:
                await hook()
            except Exception:
                log.exception("%s hook %r failed", what, hook)
