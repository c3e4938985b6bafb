"""Limiters on tasks: jobs over a limit are deferred, not failed.

``@worker.task(rate_limit=Window("erp", 50, per=1), rate_key=lambda company_id, **_:
company_id)`` checks every job of the task against the limiter of its key before it runs
(``"erp:<company_id>"`` here: one limit per company).  ``global_concurrency=20`` caps the
task's running jobs across all workers, and ``Worker(global_concurrency={"reports": 20})``
caps a queue's.  All of them are :class:`LimitGate`\\ s (see :mod:`aioworker.extensions`):

- a job over its limit goes back to its queue's schedule for as long as the limiter
  expects (its place among the jobs waiting for the same limiter counted, plus up to 10 %
  jitter, at most 0.25 s), without using an attempt and without holding a slot of the
  worker;
- a global concurrency hold is taken before the job runs, renewed every third of the
  worker's lease while it runs, released when it ends (a crashed worker's holds lapse
  with the lease of its jobs);
- with ``rate_max_wait``, a job is deferred at most until that long after its first
  refusal in this attempt (Redis time); refused then, it fails the attempt with
  ``RateLimited``: it is retried after its backoff like any failure, and dead-lettered
  when attempts run out.

Gates run in this order: the queue's cap, the task's cap, then the rate limit, so a rate
limiter's units are only spent by jobs that will run.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .arity import pieces
from .broker import TRANSIENT_ERRORS
from .errors import ConfigError, RateLimited
from .extensions import Gate
from .job import JobRecord
from .keys import QueueKeys
from .limits import FORGET_MS, Concurrent, Limiter
from .timeunits import Seconds, to_ms

if TYPE_CHECKING:
    from .host import Host

__all__ = ("KeyFn", "LimitGate", "QueueCapGate", "task_gates")

log = logging.getLogger("aioworker.limits")

KeyFn = Callable[..., str | int]
"""Called with a job's arguments (without the context); returns the limiter key."""

MIN_DEFER_S = 0.005
OUTAGE_DEFER_S = 1.0
MAX_JITTER_S = 0.25
_FORBIDDEN = set("{}\r\n ")


class LimitGate:
    """Admits a task's jobs through a limiter and defers the ones over the limit.

    :param limiter: a bound limiter (any kind).
    :param key: a function of the job's arguments giving the key (``limiter.key(...)``).
    :param max_wait: seconds a job may be refused in one attempt before the attempt fails
        with ``RateLimited`` (None: deferred for as long as it takes).
    :param jitter: the fraction of each deferral added at random (at most 0.25 s).
    :raises ConfigError: if the limiter has no Redis.
    """

    def __init__(
        self,
        limiter: Limiter,
        *,
        key: KeyFn | None = None,
        max_wait: Seconds | None = None,
        jitter: float = 0.1,
    ) -> None:
        if not limiter.bound:
            raise ConfigError(f"{limiter!r} on a gate needs a Redis: bind it to the worker")
        self.limiter = limiter
        self.key_fn = key
        self.max_wait_ms = 0 if max_wait is None else max(to_ms(max_wait), 1)
        self.forget_ms = FORGET_MS if max_wait is None else max(2 * self.max_wait_ms, 60_000)
        self.jitter = jitter
        self._holds: dict[tuple[str, str], tuple[Concurrent, str]] = {}

    def __repr__(self) -> str:
        return f"<LimitGate {self.limiter!r}>"

    def limiter_for(self, job: JobRecord) -> Limiter | None:
        """The limiter that applies to a job (None: the job is not limited).

        :raises ValueError: if the key function fails on the job's arguments or returns a
            key that cannot be a limiter name.
        """
        if self.key_fn is None:
            return self.limiter
        try:
            key = self.key_fn(*job.args, **job.kwargs)
        except Exception as exc:
            raise ValueError(
                f"rate_key of task {job.task} failed on the job's arguments: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return self.limiter.key(key)

    async def enter(self, job: JobRecord) -> float | None:
        """None to run the job now, else the seconds to defer it.

        :raises RateLimited: if the job has been refused for ``max_wait`` in this attempt.
        """
        limiter = self.limiter_for(job)
        if limiter is None:
            return None
        token = f"{job.id}@{job.token}"
        # a space cannot be in a queue name: "<queue> <job id>" names the job to promote
        waiter = f"{job.queue} {job.id}"
        try:
            adm = await limiter.attempt(
                waiter=waiter, max_wait_ms=self.max_wait_ms, forget_ms=self.forget_ms, token=token
            )
        except TRANSIENT_ERRORS as exc:
            # Redis out of reach is no fault of the job: try again soon, attempt kept
            log.warning("limiter %s unavailable, job %s deferred: %s", limiter.name, job.id, exc)
            return OUTAGE_DEFER_S * (1 + random.random())
        if adm:
            if isinstance(limiter, Concurrent):
                self._holds[(job.id, job.token)] = (limiter, token)
                limiter.renewer.add(limiter, token)
            return None
        # jitter keeps jobs told the same moment apart, and stays small for long waits
        delay_s = adm.retry_after_s + min(adm.retry_after_s * self.jitter, MAX_JITTER_S) * (
            random.random()
        )
        if self.max_wait_ms:
            left_s = self.max_wait_ms / 1000 - adm.waited_s
            if left_s <= 0:
                raise RateLimited(limiter.name, adm.retry_after_s, adm.waited_s)
            # back by the end of its max wait at the latest, to try a last time
            delay_s = min(delay_s, left_s + 0.001)
        return max(delay_s, MIN_DEFER_S)

    async def exit(self, job: JobRecord, outcome: str) -> None:
        """Release the job's Concurrent hold, if it took one, and bring the jobs waiting
        for the freed slot forward (instead of leaving the slot idle until they are due)."""
        hold = self._holds.pop((job.id, job.token), None)
        if hold is None:
            return
        limiter, token = hold
        _, waiters = await limiter.release_to_waiters(token)
        by_queue: dict[str, list[str]] = defaultdict(list)
        for waiter in waiters:
            queue, sep, job_id = waiter.partition(" ")
            if sep and job_id and not _FORBIDDEN & set(queue):
                by_queue[queue].append(job_id)
        broker = limiter.broker
        for queue, ids in by_queue.items():
            k = QueueKeys(limiter.keys.prefix, queue)
            for piece in pieces(ids, 2, 1):
                await broker.scripts.run("limit_promote", [k.scheduled, k.wake], list(piece))


class QueueCapGate(LimitGate):
    """A cap on the running jobs of each listed queue across all workers.

    :param host: the worker whose Redis holds the holds (and whose lease they take).
    :param caps: queue -> most of its jobs running at once.
    """

    def __init__(self, host: Host, caps: Mapping[str, int]) -> None:
        lease_s = host.settings.lease_timeout_s
        self._caps = {
            queue: Concurrent(f"queue:{queue}", n, lease=lease_s, on=host)
            for queue, n in caps.items()
        }
        first = next(iter(self._caps.values()))
        super().__init__(first)

    def limiter_for(self, job: JobRecord) -> Limiter | None:
        return self._caps.get(job.queue)


def task_gates(
    host: Host,
    task_name: str,
    *,
    rate_limit: Limiter | None,
    rate_key: KeyFn | None,
    rate_max_wait: Seconds | None,
    global_concurrency: int | None,
) -> list[Gate]:
    """The gates for a task's limit options, in the order they run.

    :raises ConfigError: for options that do not fit together.
    """
    settings = host.settings
    gates: list[Gate] = []
    if settings.global_concurrency:
        gates.append(QueueCapGate(host, settings.global_concurrency))
    if global_concurrency is not None:
        if not isinstance(global_concurrency, int) or global_concurrency < 1:
            raise ConfigError(f"task {task_name!r}: global_concurrency must be at least 1")
        cap = Concurrent(
            f"task:{task_name}", global_concurrency, lease=settings.lease_timeout_s, on=host
        )
        gates.append(LimitGate(cap))
    if rate_limit is None:
        if rate_key is not None or rate_max_wait is not None:
            raise ConfigError(f"task {task_name!r}: rate_key and rate_max_wait need rate_limit")
        return gates
    if not isinstance(rate_limit, Limiter):
        raise ConfigError(f"task {task_name!r}: rate_limit must be a limiter, got {rate_limit!r}")
    limiter: Limiter = rate_limit if rate_limit.bound else rate_limit.bind(host)
    gates.append(LimitGate(limiter, key=rate_key, max_wait=rate_max_wait))
    return gates
