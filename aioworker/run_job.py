"""Running one job: prepare it, execute it, write its outcome.

- **prepare** decodes the record, finds the task, checks the attempt count and the
  checkpoint, builds the :class:`~aioworker.JobContext`, passes the gates and binds the
  arguments; anything that stops the job here is an :class:`Outcome` at once (``dead``
  for data that cannot run, ``defer`` for a gate that is not ready, ``complete`` for a
  skip);
- **execute** (:mod:`aioworker.executor`) awaits the job under its timeout and turns what
  happened into an outcome;
- **outcome**: the gates that admitted the job are told it is over, the outcome is
  written (:mod:`aioworker.outcomes`) and the observers hear of it.

The runtime (:mod:`aioworker.runtime`) leases jobs and keeps the bookkeeping of what runs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .context import JobContext
from .errors import Skip
from .executor import Outcome, error_info, execute, failure
from .job import JobRecord
from .keys import QueueKeys
from .logfields import event_fields
from .payload import DecodeError, decode_record, decode_state
from .running import Running
from .scripts import FetchedJob

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from .hooks import BusyTracker
    from .outcomes import OutcomeWriter
    from .plan import RunPlan
    from .scripts import Scripts
    from .task import Task

__all__ = ("JobRunner",)

log = logging.getLogger("aioworker.worker")
joblog = logging.getLogger("aioworker.job")


@dataclass(slots=True)
class Prepared:
    """A job ready to execute: its task, bound coroutine and timeout."""

    task: Task[Any, Any]
    coro: Awaitable[Any]
    record: JobRecord
    timeout_s: float | None


class JobRunner:
    """Runs the jobs a runtime leased, from their record to their written outcome.

    :param plan: the run's tasks, gates, observers and settings.
    :param scripts: the script runner (checkpoints).
    :param outcomes: writes outcomes.
    :param busy: counts the jobs that keep the worker busy (scale-in protection).
    :param shutting_down: set when the worker starts draining (``ctx.shutting_down``).
    """

    def __init__(
        self,
        plan: RunPlan,
        scripts: Scripts,
        outcomes: OutcomeWriter,
        busy: BusyTracker,
        shutting_down: asyncio.Event,
    ) -> None:
        self.plan = plan
        self.settings = plan.settings
        self.scripts = scripts
        self.outcomes = outcomes
        self.busy = busy
        self.shutting_down = shutting_down
        self.observers = list(plan.observers)  # the run's instruments are added to it

    async def run(self, run: Running, k: QueueKeys, fetched: FetchedJob) -> None:
        """Prepare, execute and write the outcome of one leased job."""
        try:
            prepared = await self.prepare(run, k, fetched)
            if isinstance(prepared, Outcome):
                outcome = prepared
            else:
                outcome = await self.execute(run, prepared)
            run.executing = False
            run.outcome = outcome.kind
            await self.exit_gates(run, outcome.kind)
            await self.outcomes.write(run, k, outcome)
            if run.record is not None:
                for observer in self.observers:
                    # for a deferral, the delay the gate asked for (limiter waits)
                    took = outcome.delay_s if outcome.kind == "defer" else outcome.duration_s
                    observer.job_finished(run.record, outcome.kind, took)
        except Exception as exc:
            log.exception(
                "job %s: internal error while handling its outcome",
                run.job_id,
                extra=event_fields(run, "internal_error", type(exc).__name__),
            )
            if not run.outcome:  # failed before its outcome was known: dead, not a loop
                await self.outcomes.internal_error(run, k, exc)
        finally:
            if run.protected:
                self.busy.job_finished()

    async def prepare(self, run: Running, k: QueueKeys, fetched: FetchedJob) -> Prepared | Outcome:
        """Everything up to the job's first line, or the outcome that ends it before."""
        try:
            enqueued_ms, body = decode_record(fetched.record)
        except DecodeError as exc:
            return Outcome("dead", error=error_info(None, f"corrupt record: {exc}", "DecodeError"))
        run.task_name = body["t"]
        batch = body.get("b")  # a batch child's outcome also goes to the batch outbox
        run.batch = batch if isinstance(batch, str) else ""
        tasks = self.plan.tasks
        task = tasks.get(body["t"])
        if task is None:
            known = ", ".join(sorted(tasks)) or "none"
            err = error_info(
                None, f"unknown task {body['t']!r} (this worker has: {known})", "UnknownTask"
            )
            return Outcome("dead", error=err)
        args, kwargs = body.get("a", []), body.get("k", {})
        max_attempts = task.max_attempts(body.get("r"))
        record = run.record = JobRecord(
            run.job_id,
            run.queue,
            task.name,
            args,
            kwargs,
            enqueued_ms,
            run.attempt,
            max_attempts,
            run.token,
            body,
        )
        if run.attempt > max_attempts:
            # only reachable when a worker died mid-run and the job had no attempts left
            msg = (
                f"the worker running attempt {run.attempt - 1} of {max_attempts} stopped "
                "without finishing it; not run again (no attempts left)"
            )
            return Outcome("dead", error=error_info(None, msg, "WorkerLost"))
        try:
            decode_state(fetched.state)  # a checkpoint that cannot be read: dead, once
        except DecodeError as exc:
            return Outcome("dead", error=error_info(None, f"corrupt record: {exc}", "DecodeError"))
        ctx = JobContext(
            client=self.plan.client,
            job_id=run.job_id,
            task=task.name,
            queue=run.queue,
            attempt=run.attempt,
            max_attempts=max_attempts,
            enqueued_ms=enqueued_ms,
            state=fetched.state,
            saver=functools.partial(self._checkpoint, k, run.job_id, run.token),
            shutting_down=self.shutting_down,
            payload=body,
            batch_of=self.plan.batch_of,
        )
        run.ctx = ctx
        for gate in (*self.plan.gates, *task.gates):
            try:
                wait_s = await gate.enter(record)
            except Skip as exc:
                await self.exit_gates(run, "complete")
                joblog.info("job %s %s skipped: %s", run.job_id, task.name, exc.reason)
                return Outcome("complete", value=b"null")
            except Exception as exc:
                await self.exit_gates(run, "retry")
                return failure(task, run.attempt, max_attempts, exc, error_info(exc))
            if wait_s is not None:
                await self.exit_gates(run, "defer")
                return Outcome("defer", delay_s=wait_s)
            run.gates.append(gate)
        try:
            # creating the coroutine binds the arguments without running any of the body
            coro = task.fn(ctx, *args, **kwargs)
        except TypeError as exc:
            msg = f"arguments do not match {task.name}{task.signature}: {exc}"
            await self.exit_gates(run, "dead")
            return Outcome("dead", error=error_info(None, msg, "BadArguments"))
        return Prepared(task, coro, record, body.get("o", task.timeout_s))

    async def execute(self, run: Running, job: Prepared) -> Outcome:
        """Await the prepared job under its timeout (see :mod:`aioworker.executor`)."""
        task = job.task
        if self.settings.protect == "any" or not task.interruptible:
            run.protected = True
            self.busy.job_started()
        if joblog.isEnabledFor(logging.DEBUG):
            joblog.debug(
                "job %s %s started (attempt %d)",
                run.job_id,
                task.name,
                run.attempt,
                extra=event_fields(run, "started"),
            )
        for observer in self.observers:
            observer.job_started(job.record)
        return await execute(
            task,
            job.coro,
            attempt=run.attempt,
            max_attempts=job.record.max_attempts,
            timeout_s=job.timeout_s,
            shutting_down=self.shutting_down,
            cancel_requested=run.cancel_requested,
            max_result_bytes=self.settings.max_result_bytes,
        )

    async def exit_gates(self, run: Running, outcome: str) -> None:
        """Tell the gates that admitted the job that it is over (last admitted first)."""
        while run.gates:
            gate = run.gates.pop()
            try:
                await gate.exit(run.record, outcome)  # type: ignore[arg-type]
            except Exception as exc:
                log.exception(
                    "job %s: gate %r failed to release",
                    run.job_id,
                    gate,
                    extra=event_fields(run, "gate_error", type(exc).__name__),
                )

    async def _checkpoint(self, k: QueueKeys, job_id: str, token: str, blob: bytes) -> bool:
        # the job's id and token, not its Running: the Running holds the JobContext that
        # holds this saver, and such a cycle leaves every finished job to the cyclic
        # garbage collector; a refused save is repeated like an outcome write
        ok = await self.outcomes.persist(
            f"checkpoint job {job_id}",
            lambda: self.scripts.checkpoint(k, job_id, token, blob),
        )
        return bool(ok)
