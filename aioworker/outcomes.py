"""Writing what became of a run: complete (batched), retry, defer, dead, requeue.

Each outcome is one script call fenced by the run's lease token; a write that fails
because Redis is away is repeated by :class:`~aioworker.acker.Durable`, a write Redis
refuses (an error reply, e.g. a key of the wrong type) is repeated with backoff until it
is accepted or the shutdown deadline passes, while the heartbeat keeps the lease, and an
outcome refused because the lease was lost is logged and discarded (another worker owns
the job).  A run that failed inside the worker before its outcome was known is
dead-lettered with the error, so a job that cannot be handled is never recovered and
retried for ever.  Log lines about jobs carry ``job_id``, ``task``, ``queue``, ``attempt`` and
``event`` (plus ``error_class`` on errors) for structured logs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from .acker import Acker, Durable
from .cancellation import cancel_done
from .executor import Outcome, error_info
from .keys import QueueKeys
from .logfields import event_fields
from .payload import dumps
from .redis_errors import ResponseError
from .running import Running, describe, unsaved_state
from .supervisor import Spawn, restarting

if TYPE_CHECKING:
    from .scripts import Scripts
    from .settings import Settings

__all__ = ("OutcomeWriter",)

joblog = logging.getLogger("aioworker.job")

T = TypeVar("T")


async def accepted(
    what: str, fn: Callable[[], Awaitable[T]], deadline: Callable[[], float | None]
) -> T:
    """Call ``fn`` until Redis accepts it: an error reply is retried with capped backoff.

    :param what: the write, for the log line.
    :param deadline: the current ``time.monotonic()`` deadline of writes, or None.
    :raises ResponseError: the last refusal, once the deadline would pass.
    """
    delay, refusals = 0.05, 0
    while True:
        try:
            return await fn()
        except ResponseError as exc:
            end = deadline()
            if end is not None and time.monotonic() + delay > end:
                raise
            refusals += 1
            if refusals == 1 or refusals % 20 == 0:
                joblog.error(
                    "could not %s: Redis refused it (%s); trying again (%d refusals so far)",
                    what,
                    exc,
                    refusals,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


class OutcomeWriter:
    """Writes outcomes for the queues of one runtime and counts them in ``stats``.

    :param settings: the worker's settings (result and dead-letter retention).
    :param scripts: the script runner.
    :param durable: repeats a write through connection loss.
    :param keys: queue -> its keys, for the queues of the runtime.
    :param spawn: starts the ack flushers as supervised loops.
    """

    def __init__(
        self,
        settings: Settings,
        scripts: Scripts,
        durable: Durable,
        keys: Mapping[str, QueueKeys],
        spawn: Spawn = restarting,
    ) -> None:
        self.settings = settings
        self.scripts = scripts
        self.durable = durable
        self.stats = {"complete": 0, "retry": 0, "dead": 0, "requeue": 0, "defer": 0, "lost": 0}
        self.ackers = {
            q: Acker(functools.partial(self._complete, k), durable, name=f"acks:{q}", spawn=spawn)
            for q, k in keys.items()
        }
        self._writers: dict[str, Callable[[Running, QueueKeys, Outcome], Awaitable[bool | None]]]
        self._writers = {
            "complete": self.complete,
            "retry": self.retry,
            "defer": self.defer,
            "dead": self.dead,
            "cancel": self.cancel,
            "requeue": self.requeue,
        }

    async def write(self, run: Running, k: QueueKeys, outcome: Outcome) -> None:
        """Write a finished run's outcome with the script for it, fenced by its lease."""
        if run.abandoned:
            return  # shutdown already requeued it from outside
        ok = await self._writers[outcome.kind](run, k, outcome)
        if ok is False:
            self.stats["lost"] += 1
            joblog.warning(
                "job %s %s: lease lost before its %s was written (another worker owns it); "
                "this run's outcome was discarded",
                run.job_id,
                run.task_name,
                outcome.kind,
                extra=event_fields(run, "lease_lost"),
            )
        elif ok:
            self.stats[outcome.kind] = self.stats.get(outcome.kind, 0) + 1  # "cancel" is rare

    async def complete(self, run: Running, k: QueueKeys, outcome: Outcome) -> bool | None:
        """Acknowledge a finished job (batched with others of its queue)."""
        result = b'{"s":"complete","n":%d,"t":%s,"v":%s}' % (
            run.attempt,
            dumps(run.task_name),
            outcome.value,
        )
        return await self.ackers[run.queue].ack((run.job_id, run.token, result, run.batch))

    async def retry(self, run: Running, k: QueueKeys, outcome: Outcome) -> bool | None:
        """Schedule the next attempt of a failed job after its backoff."""
        job, error = run.job_id, outcome.error or {}
        err = dumps(outcome.error)
        delay_ms = int(outcome.delay_s * 1000)
        ok = await self.persist(
            f"retry job {job}", lambda: self.scripts.retry(k, job, run.token, delay_ms, err)
        )
        joblog.warning(
            "job %s %s failed (attempt %d), retrying in %.1f s: %s: %s",
            job,
            run.task_name,
            run.attempt,
            outcome.delay_s,
            error.get("type"),
            error.get("message"),
            extra=event_fields(run, "retry", error.get("type")),
        )
        return ok

    async def defer(self, run: Running, k: QueueKeys, outcome: Outcome) -> bool | None:
        """Put back a job a gate did not admit yet, without counting an attempt."""
        job = run.job_id
        delay_ms = max(int(outcome.delay_s * 1000), 1)
        ok = await self.persist(
            f"defer job {job}",
            lambda: self.scripts.retry(k, job, run.token, delay_ms, b"", count_attempt=False),
        )
        if joblog.isEnabledFor(logging.DEBUG):
            joblog.debug("job %s %s deferred %.3f s", job, run.task_name, outcome.delay_s)
        return ok

    async def dead(self, run: Running, k: QueueKeys, outcome: Outcome) -> bool | None:
        """Dead-letter a job with its error (no attempts left, or it cannot run)."""
        job, error, s = run.job_id, outcome.error or {}, self.settings
        err = dumps(error)
        res = dumps({"s": "dead", "n": run.attempt, "t": run.task_name, "e": error})
        ok = await self.persist(
            f"dead-letter job {job}",
            lambda: self.scripts.dead(
                k, job, run.token, err, res, s.result_ttl_ms, s.dead_max, s.dead_ttl_ms, run.batch
            ),
        )
        joblog.error(
            "job %s %s dead-lettered after attempt %d: %s: %s",
            job,
            run.task_name,
            run.attempt,
            error.get("type"),
            error.get("message"),
            extra=event_fields(run, "dead", error.get("type")),
        )
        return ok

    async def cancel(self, run: Running, k: QueueKeys, outcome: Outcome) -> bool | None:
        """Record a job cancelled at an operator's request."""
        job, ttl_ms = run.job_id, self.settings.result_ttl_ms
        res = dumps({"s": "cancelled", "n": run.attempt, "t": run.task_name})
        ok = await self.persist(
            f"record cancelled job {job}",
            lambda: cancel_done(self.scripts, k, job, run.token, res, ttl_ms),
        )
        joblog.warning(
            "job %s %s cancelled at an operator's request after %.1f s (attempt %d)",
            job,
            run.task_name,
            outcome.duration_s,
            run.attempt,
            extra=event_fields(run, "cancelled"),
        )
        return ok

    async def requeue(self, run: Running, k: QueueKeys, outcome: Outcome) -> bool | None:
        """Put a job interrupted by the shutdown back at the front, with its state."""
        job, state = run.job_id, unsaved_state(run)
        ok = await self.persist(
            f"requeue job {job}", lambda: self.scripts.requeue(k, job, run.token, state)
        )
        if ok:
            joblog.warning(
                "interrupted %s; requeued at the front of %s without using an attempt",
                describe(run),
                run.queue,
                extra=event_fields(run, "interrupted"),
            )
        return ok

    async def buried(self, k: QueueKeys, job_ids: list[str]) -> None:
        """Finish the jobs a fetch dead-lettered as corrupt: their result and done marker
        (so ``job.result()`` raises JobDead at once), and the dead count."""
        ttl_ms = self.settings.result_ttl_ms
        what = f"record dead-lettered job(s) {' '.join(job_ids[:20])}"
        try:  # one try through connection loss: a refusal must not hold up the fetch loop
            n = await self.durable(what, lambda: self.scripts.buried(k, job_ids, ttl_ms))
        except Exception:  # refused (a wrong-typed key, an ACL rule): the waiters time out
            joblog.exception("could not %s", what)
            n = None
        # dead letters either way (fetch moved them), counted even without their result
        self.stats["dead"] += len(job_ids) if n is None else n

    async def internal_error(self, run: Running, k: QueueKeys, exc: Exception) -> None:
        """Dead-letter a run that failed inside the worker before its outcome was known
        (recovering it would fail the same way at every lease timeout)."""
        msg = f"internal error while handling the job: {type(exc).__name__}: {exc}"
        try:
            await self.write(run, k, Outcome("dead", error=error_info(exc, msg, "InternalError")))
        except Exception:
            joblog.exception("job %s: could not dead-letter it after an internal error", run.job_id)

    async def persist(self, what: str, fn: Callable[[], Awaitable[T]]) -> T | None:
        """``fn`` retried through connection loss and through refusals (error replies)."""
        return await self.durable(what, lambda: accepted(what, fn, self._deadline))

    def _deadline(self) -> float | None:
        return self.durable.deadline

    async def _complete(self, k: QueueKeys, items: list[tuple[str, str, bytes, str]]) -> list[bool]:
        ttl_ms = self.settings.result_ttl_ms
        return await accepted(
            "acknowledge finished jobs",
            lambda: self.scripts.complete(k, ttl_ms, items),
            self._deadline,
        )
