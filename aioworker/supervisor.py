"""Supervised background loops: no long-lived task of a worker dies silently.

A worker's long-lived tasks (a fetch loop per queue, the heartbeat, services such as the
batch outbox drain) are started by a :class:`Supervisor`.  When one raises an
unexpected exception:

1. the exception is logged at once at ERROR, with its traceback;
2. the loop is started again after a capped exponential backoff with jitter
   (0.1 s doubling to 10 s); a run that lasted :data:`HEALTHY_RUN_S` or more ends the
   streak of failures;
3. a loop failing without a break for ``unhealthy_after_s`` (60 s) makes
   :meth:`Supervisor.liveness` report it, so ``/livez`` answers 503;
4. after ``exit_after_s`` (300 s) the supervisor calls ``on_exit`` once: the worker
   drains and exits non-zero (:class:`~aioworker.errors.WorkerUnhealthy`, CLI exit 1),
   so its orchestrator replaces it.

A loop that returns normally is done and not restarted; cancelling it stops it.  Tasks
that live outside a worker's runtime (a leadership's renewal, a limiter's renewal) are
started with :func:`restarting`: the same logging and backoff, without a liveness probe
or an exit.  Short-lived tasks that are not restarted (a wake-up push) get
:func:`log_failure` as a done callback, so their failure is logged when it happens and
never reaches "Task exception was never retrieved".
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = ("HEALTHY_RUN_S", "Spawn", "Supervisor", "log_failure", "restarting")

log = logging.getLogger("aioworker.worker")

BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 10.0
#: A run at least this long is not part of a streak of failures.
HEALTHY_RUN_S = 10.0

LoopFactory = Callable[[], Awaitable[None]]
#: Starts a named loop: :meth:`Supervisor.spawn` or :func:`restarting`.
Spawn = Callable[[str, LoopFactory], "asyncio.Task[None]"]


def log_failure(task: asyncio.Task[Any]) -> None:
    """Done callback: log the task's exception at once (and so retrieve it)."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("background task %s failed", task.get_name(), exc_info=exc)


def restarting(name: str, factory: LoopFactory) -> asyncio.Task[None]:
    """Run ``factory()`` as the task ``name``, restarted with backoff whenever it fails.

    For loops outside a worker's runtime: each failure is logged at once with its
    traceback, as a supervised loop's is, but nothing turns unhealthy or exits.

    :returns: the task; cancel it to stop the loop.
    """
    return Supervisor(unhealthy_after_s=math.inf, exit_after_s=math.inf).spawn(name, factory)


@dataclass
class _Loop:
    name: str
    started: float = 0.0  # time.monotonic() when the current run started
    failing_since: float | None = None  # the first failure of the current streak
    failures: int = 0  # in the current streak


class Supervisor:
    """Starts named loops and restarts them when they fail.

    :param unhealthy_after_s: a loop failing for this long makes :meth:`liveness` fail.
    :param exit_after_s: a loop failing for this long calls ``on_exit`` (once).
    :param on_exit: told why the worker should stop (``"loop fetch:default failing ..."``).
    :param healthy_run_s: a run at least this long ends a streak of failures.
    """

    def __init__(
        self,
        *,
        unhealthy_after_s: float = 60.0,
        exit_after_s: float = 300.0,
        on_exit: Callable[[str], None] | None = None,
        healthy_run_s: float = HEALTHY_RUN_S,
    ) -> None:
        self.healthy_run_s = healthy_run_s
        self.unhealthy_after_s = unhealthy_after_s
        self.exit_after_s = exit_after_s
        self._on_exit = on_exit
        self._loops: dict[str, _Loop] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.exit_reason: str | None = None

    def spawn(self, name: str, factory: LoopFactory) -> asyncio.Task[None]:
        """Run ``factory()`` as the loop ``name``, restarted whenever it fails.

        :returns: the task; cancel it to stop the loop.
        """
        self._loops[name] = _Loop(name)
        task = asyncio.create_task(self._keep(self._loops[name], factory), name=name)
        self._tasks[name] = task
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[None]) -> None:
        name = task.get_name()
        if self._tasks.get(name) is task:
            del self._tasks[name]
            self._loops.pop(name, None)

    async def stop(self) -> None:
        """Cancel every loop still running and wait for them."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def failing(self) -> dict[str, float]:
        """Loop name -> seconds it has been failing without a break."""
        now = time.monotonic()
        out: dict[str, float] = {}
        for loop in self._loops.values():
            if loop.failing_since is None:
                continue
            if loop.started and now - loop.started >= self.healthy_run_s:
                continue  # restarted and running well since
            out[loop.name] = now - loop.failing_since
        return out

    def liveness(self) -> str | None:
        """None while no loop has been failing for ``unhealthy_after_s``, else why."""
        bad = {n: s for n, s in self.failing().items() if s >= self.unhealthy_after_s}
        if not bad:
            return None
        return "; ".join(f"loop {n} failing for {s:.0f} s" for n, s in sorted(bad.items()))

    async def _keep(self, loop: _Loop, factory: LoopFactory) -> None:
        while True:
            loop.started = time.monotonic()
            try:
                await factory()
                return
            except Exception as exc:
                now = time.monotonic()
                if loop.failing_since is None or now - loop.started >= self.healthy_run_s:
                    loop.failing_since, loop.failures = now, 0
                loop.failures += 1
                delay = min(BACKOFF_BASE_S * 2 ** (loop.failures - 1), BACKOFF_CAP_S)
                delay *= random.uniform(0.5, 1.0)
                log.error(
                    "background loop %s failed (%d time(s) in a row, for %.1f s); "
                    "restarting it in %.2f s",
                    loop.name,
                    loop.failures,
                    now - loop.failing_since,
                    delay,
                    exc_info=exc,
                )
                loop.started = 0.0
                self._check_exit(loop, now)
            await asyncio.sleep(delay)

    def _check_exit(self, loop: _Loop, now: float) -> None:
        if self.exit_reason is not None or loop.failing_since is None:
            return
        failing_s = now - loop.failing_since
        if failing_s < self.exit_after_s:
            return
        self.exit_reason = f"loop {loop.name} failing for {failing_s:.0f} s"
        log.critical("%s: stopping this worker so that it is replaced", self.exit_reason)
        if self._on_exit is not None:
            self._on_exit(self.exit_reason)
