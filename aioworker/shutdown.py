"""Leaving without losing work: the shutdown phases.

On SIGTERM/SIGINT (or the end of a burst run):

1. **stop fetching** at once: fetch loops end, idle waits are cancelled, and
   ``ctx.shutting_down`` is set so long jobs can checkpoint and return early;
2. **grace**: running jobs have ``shutdown_grace`` seconds to finish normally;
3. **cancel**: what is still running is cancelled (``CancelledError`` at its next
   await) and has ``cancel_grace`` seconds to save a checkpoint in its cleanup; each
   such job is requeued at the *front* of its queue with its last checkpoint, and the
   interrupted run is not counted as an attempt;
4. **hard deadline**: a job that ignores cancellation is requeued from outside with its
   last saved checkpoint, and reported; then the worker exits.

A second signal skips what is left of the grace period (phase 3 starts at once, with a
shorter cancel deadline); jobs are still requeued, never dropped.  Every interrupted job
gets one log line, and a summary line closes the shutdown.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import TYPE_CHECKING

from .logfields import event_fields
from .running import describe, unsaved_state

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ("drain",)

log = logging.getLogger("aioworker.worker")

FORCED_CANCEL_GRACE_S = 1.0


async def _wait_idle(runtime: Runtime, timeout_s: float, force: asyncio.Event) -> None:
    """Wait until no job runs, the timeout passes, or ``force`` is set."""
    deadline = time.monotonic() + timeout_s
    while runtime.running and not force.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        tasks = [r.task for r in runtime.running.values() if r.task is not None]
        waiter = asyncio.ensure_future(force.wait())
        await asyncio.wait([*tasks, waiter], timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()


async def drain(
    runtime: Runtime,
    *,
    grace_s: float,
    cancel_grace_s: float,
    force: asyncio.Event,
    reason: str,
) -> dict[str, int]:
    """Run the shutdown phases and return counts of what happened to running jobs."""
    started = time.monotonic()
    await runtime.stop_fetching()
    at_start = len(runtime.running)
    if at_start:
        log.warning(
            "shutting down (%s): stopped fetching; %d job(s) running, waiting up to %.1f s "
            "for them to finish",
            reason,
            at_start,
            grace_s,
        )
    else:
        log.info("shutting down (%s): stopped fetching; no job running", reason)
    runtime.durable.deadline = time.monotonic() + grace_s + cancel_grace_s + 2.0

    await _wait_idle(runtime, grace_s, force)

    interrupted = 0
    if runtime.running:
        cancel_grace = FORCED_CANCEL_GRACE_S if force.is_set() else cancel_grace_s
        runtime.durable.deadline = time.monotonic() + cancel_grace + 2.0
        for run in list(runtime.running.values()):
            if run.executing and run.task is not None:
                task = runtime.tasks.get(run.task_name)
                if task is not None and not task.interruptible:
                    log.error(
                        "%s is marked non-interruptible but the shutdown budget ran out; "
                        "cancelling it now",
                        describe(run),
                        extra=event_fields(run, "budget_exceeded", "ShutdownBudget"),
                    )
                interrupted += 1
                run.task.cancel()
        await _wait_idle(runtime, cancel_grace, asyncio.Event())

    stuck = 0
    for run in list(runtime.running.values()):
        if not run.executing:
            continue  # its outcome is being written; Durable gives up at the deadline
        stuck += 1
        run.abandoned = True  # whatever the job does later, its outcome is not written
        state = unsaved_state(run)
        k = runtime.keys[run.queue]
        ok = await runtime.durable(
            f"requeue job {run.job_id}",
            functools.partial(runtime.scripts.requeue, k, run.job_id, run.token, state),
        )
        log.error(
            "%s ignored cancellation; %s",
            describe(run),
            "requeued at the front of its queue with its last checkpoint"
            if ok
            else "could not requeue it; another worker will recover it when its lease expires",
            extra=event_fields(run, "ignored_cancel", "IgnoredCancellation"),
        )
        runtime.running.pop(run.job_id, None)
    if runtime.running:
        await _wait_idle(runtime, 2.0, asyncio.Event())

    await runtime.stop_heartbeat()
    await runtime.busy.stop()
    summary = {
        "running_at_signal": at_start,
        "finished_in_grace": at_start - interrupted,  # stuck jobs were interrupted too
        "interrupted": interrupted,
        "stuck": stuck,
        "requeued": runtime.stats["requeue"] + stuck,
    }
    log.log(
        logging.WARNING if interrupted or stuck else logging.INFO,
        "shutdown complete in %.1f s: %d job(s) were running, %d finished, %d interrupted "
        "and requeued, %d ignored cancellation; totals this run: %d complete, %d retried, "
        "%d dead",
        time.monotonic() - started,
        at_start,
        summary["finished_in_grace"],
        interrupted,
        stuck,
        runtime.stats["complete"],
        runtime.stats["retry"],
        runtime.stats["dead"],
    )
    return summary
