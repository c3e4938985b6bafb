"""One worker process's run: signals, health server, instruments, runtime and drain.

``Worker.run()`` calls :func:`run_process` with the plan of the run.  SIGTERM/SIGINT (or
``Worker.stop()``) start the drain of :mod:`aioworker.shutdown`; a second one skips what is
left of the grace period; cancelling the ``run()`` task drains at once (running jobs are requeued).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine, Iterable, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ConfigError, WorkerUnhealthy
from .health import HealthServer
from .instrument import Instruments
from .keys import validate_name
from .runtime import Runtime
from .shutdown import drain

if TYPE_CHECKING:
    from .plan import RunPlan

__all__ = ("parse_queue_selection", "run_in_new_loop", "run_process")

log = logging.getLogger("aioworker.worker")

T = TypeVar("T")


def parse_queue_selection(items: Iterable[str]) -> tuple[list[str], dict[str, int] | None]:
    """Parse ``["critical:5", "default:1"]`` into names and weights (None if no weight given).

    :raises ConfigError: for a malformed weight.
    """
    names: list[str] = []
    weights: dict[str, int] = {}
    for item in items:
        name, sep, weight = item.partition(":")
        if sep:
            try:
                weights[name] = int(weight)
            except ValueError:
                raise ConfigError(f"bad queue weight in {item!r}: use name:integer") from None
            if weights[name] < 1:
                raise ConfigError(f"queue weight in {item!r} must be at least 1")
        names.append(validate_name("queue", name))
    if weights:
        for name in names:
            weights.setdefault(name, 1)
    return names, weights or None


def run_in_new_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` in a new event loop: uvloop's when it is installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return asyncio.run(coro)
    result: T = uvloop.run(coro)
    return result


async def run_process(
    plan: RunPlan,
    queues: Sequence[str] | None,
    *,
    concurrency: int | None,
    burst: bool,
    handle_signals: bool,
) -> dict[str, int]:
    """Run the plan's jobs until stopped; see :meth:`Worker.run`."""
    settings = plan.settings
    names, weights = parse_queue_selection(queues or list(settings.queues))
    total = concurrency if concurrency is not None else settings.concurrency
    limits = {q: settings.queues.get(q, total or 100) for q in names}
    if total is not None and total < 1:
        raise ConfigError("concurrency must be at least 1")
    runtime = Runtime(plan, limits, total=total, weights=weights, burst=burst)
    force = asyncio.Event()
    reason = ["burst: queues drained"]
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def request_stop(why: str) -> None:
        if runtime.stopped.is_set():
            log.warning("%s again: skipping the rest of the grace period", why)
            force.set()
        else:
            reason[0] = why
            runtime.stopped.set()

    def on_signal(signum: int) -> None:
        request_stop(f"received {signal.Signals(signum).name}")

    if handle_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, on_signal, sig)
                installed.append(sig)
    health: HealthServer | None = None
    instruments: Instruments | None = None
    stoppers = plan.stoppers if plan.stoppers is not None else []
    stoppers.append(request_stop)
    try:
        instruments = Instruments(runtime)  # registry, cancels, metrics, tracing
        if settings.health_port is not None:
            health = HealthServer(runtime.liveness, runtime.readiness, port=settings.health_port)
            await health.start()
        instruments.install()
        await runtime.start()
        await instruments.start(health)
        try:
            await runtime.stopped.wait()
        except asyncio.CancelledError:
            # a cancelled run() must not leave its fetch loops and heartbeat behind:
            # stop at once, requeue running jobs, then let the cancellation go on
            force.set()
            await drain(
                runtime,
                grace_s=0.0,
                cancel_grace_s=settings.cancel_grace_s,
                force=force,
                reason="run() cancelled",
            )
            raise
        await drain(
            runtime,
            grace_s=settings.shutdown_grace_s,
            cancel_grace_s=settings.cancel_grace_s,
            force=force,
            reason=runtime.unhealthy or reason[0],
        )
        if runtime.unhealthy is not None:
            raise WorkerUnhealthy(f"worker stopped: {runtime.unhealthy}")
    finally:
        stoppers.remove(request_stop)
        for sig in installed:
            loop.remove_signal_handler(sig)
        if instruments is not None:
            await instruments.stop()
        if health is not None:
            await health.stop()
    return dict(runtime.stats)
