"""``Worker``: the application object that holds settings, tasks and the producer client."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from types import MappingProxyType, TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from .backoff import Backoff
from .batch_runtime import Batches
from .batches import DEFAULT_TTL, Batch
from .bounds import check_retries, check_seconds
from .broker import Broker, mask_url
from .client import Client
from .context import JobContext
from .errors import ConfigError
from .extensions import Gate, Observer, Service
from .groups import GroupKey, check_group
from .handle import JobHandle
from .hooks import Hook, Protect
from .job import JobSpec
from .keys import validate_name
from .limit_gates import KeyFn, task_gates
from .limits import Limiter
from .plan import RunPlan
from .process import parse_queue_selection, run_in_new_loop, run_process
from .settings import Settings
from .task import Task
from .timeunits import Seconds, to_ms, to_seconds
from .unique import RunningLock, UniquePolicy, as_policy
from .worker_periodic import PeriodicJobs

__all__ = ("Worker", "parse_queue_selection")

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("aioworker.worker")

DEFAULT_URL = "redis://localhost:6379/0"
#: Default ``max_result_bytes``: 1 MiB of encoded JSON.
DEFAULT_MAX_RESULT_BYTES = 1 << 20


def cluster_from_env() -> bool | None:
    """``$AIOWORKER_CLUSTER`` as a flag (unset or empty: None, ask the server).

    :raises ConfigError: for a value that is not a yes or a no.
    """
    raw = os.environ.get("AIOWORKER_CLUSTER", "").strip().lower()
    if not raw:
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"AIOWORKER_CLUSTER must be 1/0, true/false, yes/no: got {raw!r}")


class Worker(PeriodicJobs):
    """Tasks, settings and the Redis connection shared by producers and workers.

    :param redis_url: ``redis://`` or ``rediss://`` URL (``user:password@`` for ACL users);
        defaults to ``$AIOWORKER_REDIS_URL``, then ``redis://localhost:6379/0``.
    :param queues: queue name -> how many of its jobs run at once in one process.
    :param concurrency: optional cap on running jobs over all queues of a process.
    :param prefix: key prefix, to keep several applications apart on one Redis.
    :param cluster: force the cluster client (True) or a single node (False);
        None reads ``$AIOWORKER_CLUSTER`` (1/0, true/false), then asks the server.
    :param sentinels: ``(host, port)`` of Redis Sentinels; the URL's host is then the
        service name (or use a ``redis+sentinel://`` URL, see :mod:`aioworker.connect`).
    :param lease_timeout: seconds after the last heartbeat before a job is taken to be
        lost and recovered by another worker.
    :param result_ttl: how long results (and failures) are kept.
    :param dead_max: most dead-lettered jobs kept per queue.
    :param dead_ttl: how long dead-lettered jobs are kept.
    :param max_payload_bytes: the largest encoded argument payload accepted at enqueue.
    :param max_result_bytes: the largest encoded result stored (default 1 MiB); a job
        returning more is dead-lettered with a ``ResultTooLarge`` error, never retried.
    :param shutdown_grace: seconds running jobs may go on after SIGTERM.
    :param cancel_grace: seconds a cancelled job has to save a checkpoint.
    :param retries: default retries of tasks; :param timeout: default task timeout.
    :param backoff: default retry backoff.
    :param redis_options: passed to redis-py (e.g. ``ssl_ca_certs``).
    :param on_busy: coroutines called when the worker starts running jobs after being
        idle (e.g. ``EcsTaskProtection().on_busy``); :param on_idle: when it is idle again.
    :param protect: which running jobs make the worker busy: ``any`` job, or only
        ``non_interruptible`` ones.
    :param health_port: serve ``/livez`` and ``/readyz`` on this port while running.
    :param global_concurrency: queue -> most of its jobs running at once across all
        workers (crash-safe leases; see :mod:`aioworker.limit_gates`).
    :param metrics_port: serve Prometheus metrics on ``/metrics`` on this port while
        running (the health server's when equal; needs ``aioworker[metrics]``).
    :param loop_unhealthy_after: seconds a background loop (a fetch loop, the heartbeat,
        a service) may keep failing before ``/livez`` answers 503.
    :param loop_exit_after: seconds after which such a loop makes the worker drain and
        stop with :class:`~aioworker.errors.WorkerUnhealthy` (CLI exit 1).
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        queues: Mapping[str, int] | None = None,
        concurrency: int | None = None,
        prefix: str = "aioworker",
        cluster: bool | None = None,
        sentinels: Sequence[tuple[str, int]] | None = None,
        lease_timeout: Seconds = 10.0,
        result_ttl: Seconds = timedelta(days=1),
        dead_max: int = 10_000,
        dead_ttl: Seconds = timedelta(days=7),
        max_payload_bytes: int = 512 * 1024,
        max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        shutdown_grace: Seconds = 25.0,
        cancel_grace: Seconds = 3.0,
        retries: int = 3,
        timeout: Seconds | None = None,
        backoff: Backoff | None = None,
        redis_options: Mapping[str, Any] | None = None,
        on_busy: Sequence[Hook] = (),
        on_idle: Sequence[Hook] = (),
        protect: Protect = "any",
        health_port: int | None = None,
        global_concurrency: Mapping[str, int] | None = None,
        metrics_port: int | None = None,
        loop_unhealthy_after: Seconds = 60.0,
        loop_exit_after: Seconds = 300.0,
    ) -> None:
        self.redis_url = redis_url or os.environ.get("AIOWORKER_REDIS_URL") or DEFAULT_URL
        self.queues: dict[str, int] = dict(queues or {"default": 100})
        for name, n in self.queues.items():
            validate_name("queue", name)
            if n < 1:
                raise ConfigError(f"queue {name!r}: concurrency must be at least 1")
        self.concurrency = concurrency
        self.prefix = validate_name("prefix", prefix)
        self.cluster = cluster if cluster is not None else cluster_from_env()
        self.sentinels = [(str(h), int(p)) for h, p in sentinels or ()]
        self.lease_timeout_s = to_seconds(lease_timeout)
        if self.lease_timeout_s < 1:
            raise ConfigError("lease_timeout must be at least 1 second")
        self.heartbeat_s = self.lease_timeout_s / 4
        self.result_ttl_ms = to_ms(result_ttl)
        self.dead_max = dead_max
        self.dead_ttl_ms = to_ms(dead_ttl)
        self.max_payload_bytes = max_payload_bytes
        if isinstance(max_result_bytes, bool) or not isinstance(max_result_bytes, int):
            raise ConfigError(f"max_result_bytes must be a whole number, got {max_result_bytes!r}")
        if max_result_bytes < 4:  # room for the smallest result, null
            raise ConfigError(f"max_result_bytes must be at least 4, got {max_result_bytes}")
        self.max_result_bytes = max_result_bytes
        self.shutdown_grace_s = to_seconds(shutdown_grace)
        self.cancel_grace_s = to_seconds(cancel_grace)
        self.default_retries = retries
        self.default_timeout_s = None if timeout is None else to_seconds(timeout)
        self.default_backoff = backoff or Backoff()
        self.redis_options = dict(redis_options or {})
        self.on_busy: list[Hook] = list(on_busy)
        self.on_idle: list[Hook] = list(on_idle)
        if protect not in ("any", "non_interruptible"):
            raise ConfigError("protect must be 'any' or 'non_interruptible'")
        self.protect: Protect = protect
        self.health_port = health_port
        self.global_concurrency: dict[str, int] = dict(global_concurrency or {})
        for name, n in self.global_concurrency.items():
            validate_name("queue", name)
            if not isinstance(n, int) or n < 1:
                raise ConfigError(f"queue {name!r}: global_concurrency must be at least 1")
        self.metrics_port = metrics_port
        self.loop_unhealthy_after_s = to_seconds(loop_unhealthy_after)
        self.loop_exit_after_s = to_seconds(loop_exit_after)
        if not 0 < self.loop_unhealthy_after_s <= self.loop_exit_after_s:
            raise ConfigError(
                "loop_unhealthy_after and loop_exit_after must be positive, and "
                "loop_unhealthy_after no longer than loop_exit_after"
            )
        self.observers: list[Observer] = []
        self.services: list[Service] = []
        self.tasks: dict[str, Task[Any, Any]] = {}
        self._client: Client | None = None
        self._stoppers: list[Callable[[str], None]] = []
        self.gates: list[Gate] = []  # run before every job, ahead of its task's own gates
        self.gates.append(RunningLock(self))  # while_running unique jobs (aioworker.unique)
        self.batches = Batches(self)

    # -- configuration ---------------------------------------------------------------

    @property
    def safe_url(self) -> str:
        return mask_url(self.redis_url)

    @property
    def settings(self) -> Settings:
        """A frozen snapshot of the current settings (a run takes one at its start)."""
        return Settings(
            prefix=self.prefix,
            safe_url=self.safe_url,
            lease_timeout_s=self.lease_timeout_s,
            heartbeat_s=self.heartbeat_s,
            result_ttl_ms=self.result_ttl_ms,
            dead_max=self.dead_max,
            dead_ttl_ms=self.dead_ttl_ms,
            max_payload_bytes=self.max_payload_bytes,
            max_result_bytes=self.max_result_bytes,
            shutdown_grace_s=self.shutdown_grace_s,
            cancel_grace_s=self.cancel_grace_s,
            protect=self.protect,
            health_port=self.health_port,
            metrics_port=self.metrics_port,
            loop_unhealthy_after_s=self.loop_unhealthy_after_s,
            loop_exit_after_s=self.loop_exit_after_s,
            queues=self.queues,
            concurrency=self.concurrency,
            global_concurrency=self.global_concurrency,
        )

    @property
    def client(self) -> Client:
        """The producer client (connects lazily on first use)."""
        if self._client is None:
            broker = Broker(
                self.redis_url,
                cluster=self.cluster,
                sentinels=self.sentinels,
                **self.redis_options,
            )
            self._client = Client(broker, self.prefix, self.max_payload_bytes)
        return self._client

    def configure(self, *, redis_url: str | None = None, cluster: bool | None = None) -> None:
        """Change the Redis URL or cluster mode before anything connected (used by the CLI)."""
        changes = (redis_url is not None and redis_url != self.redis_url) or (
            cluster is not None and cluster != self.cluster
        )
        if changes and self._client is not None:
            raise ConfigError("configure() must be called before the worker connects")
        if redis_url is not None:
            self.redis_url = redis_url
        if cluster is not None:
            self.cluster = cluster

    def task(
        self,
        *,
        name: str | None = None,
        queue: str = "default",
        retries: int | None = None,
        timeout: Seconds | None = None,
        backoff: Backoff | None = None,
        interruptible: bool = True,
        gates: Sequence[Gate] = (),
        rate_limit: Limiter | None = None,
        rate_key: KeyFn | None = None,
        rate_max_wait: Seconds | None = None,
        global_concurrency: int | None = None,
        unique: UniquePolicy | str | None = None,
        group: GroupKey | None = None,
    ) -> Callable[[Callable[Concatenate[JobContext, P], Awaitable[R]]], Task[P, R]]:
        """Register an ``async def fn(ctx, ...)`` as a task.

        :param name: the name jobs are enqueued under (default ``module.function``).
        :param queue: the queue its jobs go to unless overridden at enqueue.
        :param retries: automatic retries after a failure (0 = never retried).
        :param timeout: seconds before a run is cancelled and counted as failed.
        :param backoff: delays between retries.
        :param interruptible: False to let running jobs of this task finish during the
            whole shutdown budget (they are still cancelled when it runs out).
        :param gates: admission gates run before each job (see :mod:`aioworker.extensions`).
        :param rate_limit: a limiter (:mod:`aioworker.limits`) every job passes before it
            runs; jobs over the limit are deferred without using an attempt.
        :param rate_key: a function of the job's arguments giving the limiter's key
            (``rate_limit.key(...)``), e.g. one limit per tenant.
        :param rate_max_wait: seconds a job may be deferred by ``rate_limit`` in one
            attempt before the attempt fails with ``RateLimited``.
        :param global_concurrency: most jobs of this task running at once across all
            workers (crash-safe leases).
        :param unique: ``Unique(mode, ...)`` (or a mode name), ``Throttle(window)`` or
            ``Debounce(window)``: at most one job per key (see :mod:`aioworker.unique`).
        :param group: the fair-share group of its jobs: a name, or a function of the
            job's arguments returning one (see :mod:`aioworker.groups`).
        """
        if retries is not None:
            check_retries(retries, error=ConfigError)
        if timeout is not None:
            check_seconds(timeout, "timeout", positive=True, error=ConfigError)
        policy = None if unique is None else as_policy(unique)
        if isinstance(group, str):
            check_group(group)
        elif group is not None and not callable(group):
            raise ConfigError(f"group must be a name or a function, got {group!r}")

        def register(fn: Callable[Concatenate[JobContext, P], Awaitable[R]]) -> Task[P, R]:
            if not asyncio.iscoroutinefunction(fn):
                raise ConfigError(f"task {fn!r} must be an async def function")
            task_name = name or f"{fn.__module__}.{fn.__qualname__}"
            if task_name in self.tasks:
                raise ConfigError(f"a task named {task_name!r} is already registered")
            validate_name("queue", queue)
            t: Task[P, R] = Task(
                self,
                fn,
                name=task_name,
                queue=queue,
                retries=self.default_retries if retries is None else retries,
                timeout_s=self.default_timeout_s if timeout is None else to_seconds(timeout),
                backoff=backoff or self.default_backoff,
                interruptible=interruptible,
                unique=policy,
                group=group,
                gates=[
                    *gates,
                    *task_gates(
                        self,
                        task_name,
                        rate_limit=rate_limit,
                        rate_key=rate_key,
                        rate_max_wait=rate_max_wait,
                        global_concurrency=global_concurrency,
                    ),
                ],
            )
            self.tasks[task_name] = t
            return t

        return register

    def service(self, fn: Service) -> Service:
        """Register a coroutine ``fn(runtime)`` to run beside the workers' fetch loops."""
        self.services.append(fn)
        return fn

    # -- producer --------------------------------------------------------------------

    async def enqueue_many(self, specs: Sequence[JobSpec]) -> list[JobHandle[Any]]:
        """Enqueue many jobs, one script call per queue and up to 2,000 jobs (build specs with
        ``Task.call``): each call is atomic, the whole enqueue is not one transaction."""
        return await self.client.enqueue(specs)

    async def enqueue(
        self, task: str, *args: Any, queue: str | None = None, **kwargs: Any
    ) -> JobHandle[Any]:
        """Enqueue a job by task name (for tools and untyped callers).

        :raises UnknownTaskError: if no such task is registered here.
        """
        from .errors import UnknownTaskError

        t = self.tasks.get(task)
        if t is None:
            raise UnknownTaskError(
                f"no task named {task!r} (known: {', '.join(sorted(self.tasks))})"
            )
        if queue is not None:
            t = t.options(queue=queue)
        return await t.enqueue(*args, **kwargs)

    def job(self, job_id: str, queue: str = "default") -> JobHandle[Any]:
        """A handle to an existing job by id."""
        return self.client.job(job_id, queue)

    def batch(
        self,
        *,
        on_complete: JobSpec | None = None,
        on_success: JobSpec | None = None,
        description: str = "",
        batch_id: str | None = None,
        ttl: Seconds = DEFAULT_TTL,
    ) -> Batch:
        """A new batch of jobs whose callbacks run once when its children have finished.

        Nothing is written until the first ``add`` or ``seal`` (or ``async with``).

        :param on_complete: enqueued once when every child finished (succeeded, died or
            was skipped), e.g. ``report.call(month)``; its job id is ``<batch id>:on_complete``.
        :param on_success: enqueued once when every child succeeded (possibly later, after
            failed children were re-run); its job id is ``<batch id>:on_success``.
        :param description: shown by ``aioworker batch list``.
        :param batch_id: a chosen id (default random); creating an existing id reuses it.
        :param ttl: the batch's keys expire this long after its last activity.
        :raises ValueError: for a batch id with braces, spaces, newlines or ``|``.
        """
        return self.batches.new(
            on_complete=on_complete,
            on_success=on_success,
            description=description,
            batch_id=batch_id,
            ttl=ttl,
        )

    async def close(self) -> None:
        """Close the Redis connection."""
        if self._client is not None:
            await self._client.broker.close()

    async def __aenter__(self) -> Worker:
        await self.client.broker.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- running ---------------------------------------------------------------------

    async def run(
        self,
        queues: Sequence[str] | None = None,
        *,
        concurrency: int | None = None,
        burst: bool = False,
        handle_signals: bool = True,
    ) -> dict[str, int]:
        """Run jobs until SIGTERM/SIGINT (or, with ``burst``, until the queues are drained).

        :param queues: queue names to serve, optionally ``name:weight``; default all
            configured queues.  Unknown names get the concurrency of ``concurrency`` or 100.
        :param concurrency: process-wide cap (overrides the constructor's).
        :param burst: leave when the queues have no ready or scheduled jobs and nothing runs.
        :param handle_signals: install SIGTERM/SIGINT handlers for the run.
        :returns: counts of jobs by outcome.
        :raises BrokerUnavailable: if Redis cannot be reached at start.
        """
        return await run_process(
            self.plan(), queues, concurrency=concurrency, burst=burst, handle_signals=handle_signals
        )

    def plan(self) -> RunPlan:
        """What a run of this worker is given: its settings now, its tasks and extensions."""
        return RunPlan(
            settings=self.settings,
            client=self.client,
            tasks=MappingProxyType(dict(self.tasks)),
            gates=tuple(self.gates),
            observers=tuple(self.observers),
            services=tuple(self.services),
            on_busy=tuple(self.on_busy),
            on_idle=tuple(self.on_idle),
            batch_of=self.batches.of_job,
            stoppers=self._stoppers,
        )

    def stop(self) -> None:
        """Ask every ``run()`` of this worker in progress to drain and return, as SIGTERM
        does (a second call skips what is left of the grace period).  Unlike cancelling
        the ``run()`` task, running jobs get the whole shutdown grace.
        """
        for request_stop in list(self._stoppers):
            request_stop("stop() called")

    def run_sync(self, **kwargs: Any) -> dict[str, int]:
        """Run the worker in a new event loop (uvloop when installed), then close it."""
        return run_in_new_loop(self._run_and_close(**kwargs))

    async def _run_and_close(self, **kwargs: Any) -> dict[str, int]:
        try:
            return await self.run(**kwargs)
        finally:
            await self.close()
