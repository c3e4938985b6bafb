"""The worker runtime: fetch loops, running jobs, heartbeats, and the way out.

Data flow, one line each:

- a fetch loop per queue takes free slots (:mod:`capacity`), and the fetch script moves
  due scheduled jobs to ready, returns expired leases to the front of the queue and
  leases up to that many jobs to this worker;
- each job runs in its own asyncio task (:mod:`run_job`: prepare, execute under its
  timeout, write the outcome);
- the heartbeat (:mod:`heartbeat`) renews the leases of running jobs, so only a dead
  worker's jobs are recovered, never a long job of a live one;
- the outcome is written by one script (complete batched by :mod:`acker`, or retry,
  dead, requeue), fenced by the lease token;
- when a fetch finds nothing, the loop blocks on the queue's wake list until an enqueue
  pushes a token, the next scheduled job is due, or a lease may have expired.

Shutdown phases are in :mod:`shutdown`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .acker import Durable
from .broker import TRANSIENT_ERRORS
from .capacity import Capacity
from .dead_trim import trim_dead
from .heartbeat import Heartbeat
from .hooks import BusyTracker
from .keys import QueueKeys
from .outage import Outage
from .outcomes import OutcomeWriter
from .run_job import JobRunner
from .running import Running
from .scripts import FetchedJob
from .supervisor import Supervisor, log_failure

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .extensions import Observer, Service
    from .plan import RunPlan
    from .task import Task

__all__ = ("Runtime",)

log = logging.getLogger("aioworker.worker")

MAX_FETCH = 200  # most jobs leased by one fetch call
IDLE_WAIT_S = 1.0  # longest block on the wake list: bounds crash-recovery detection


class Runtime:
    """Runs the jobs of the chosen queues until stopped (or drained, in burst mode).

    :param plan: the run's settings, connection, tasks and extensions.
    :param limits: queue -> concurrency for the queues this process serves.
    :param total: optional process-wide cap.
    :param weights: queue weights for sharing the cap, or None for strict order.
    :param burst: stop once the queues are drained and nothing runs.
    """

    def __init__(
        self,
        plan: RunPlan,
        limits: dict[str, int],
        *,
        total: int | None = None,
        weights: dict[str, int] | None = None,
        burst: bool = False,
    ) -> None:
        self.plan = plan
        self.settings = settings = plan.settings
        self.broker = plan.client.broker
        self.scripts = self.broker.scripts
        self.capacity = Capacity(limits, total, weights)
        self.queues = list(limits)
        self.keys = {q: QueueKeys(settings.prefix, q) for q in self.queues}
        self.burst = burst
        # An idle wait holds its queue's free slots while it blocks (the fetch behind it
        # must know how many jobs it may lease), so it is pipelined only when no other
        # queue of this process competes for them.
        self.pipelined_waits = total is None or len(self.queues) == 1
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._seq = itertools.count(1)
        self.running: dict[str, Running] = {}
        self.stopping = False
        self.shutting_down = asyncio.Event()  # seen by jobs as ctx.shutting_down
        self.stopped = asyncio.Event()  # the reason to leave: signal or burst drained
        self.outage = Outage(settings.safe_url)
        self.durable = Durable(self.outage.down, self.outage.up)
        self._fetchers: dict[str, asyncio.Task[None]] = {}
        self._waits: dict[str, asyncio.Task[bool]] = {}
        self._idle: set[str] = set()  # queues whose fetch waits on the wake list first
        self._in_fetch: set[str] = set()  # queues whose fetch script is in flight
        self.fetchers_cut_off = 0  # fetch loops cancelled after the stop's 2 s wait
        self._pending: dict[str, tuple[int, float]] = {}
        self._idle_since = time.monotonic()
        self._services: list[asyncio.Task[None]] = []
        self.unhealthy: str | None = None  # why a failing loop stops this worker
        self.supervisor = Supervisor(
            unhealthy_after_s=settings.loop_unhealthy_after_s,
            exit_after_s=settings.loop_exit_after_s,
            on_exit=self._give_up,
        )
        self._wakers: set[asyncio.Task[None]] = set()
        self.busy = BusyTracker(plan.on_busy, plan.on_idle)
        spawn = self.supervisor.spawn  # the ack flushers are supervised loops too
        self.outcomes = OutcomeWriter(settings, self.scripts, self.durable, self.keys, spawn)
        self.stats = self.outcomes.stats
        self.jobs = JobRunner(plan, self.scripts, self.outcomes, self.busy, self.shutting_down)
        self.services: list[Service] = list(plan.services)  # the instruments add theirs
        self.heartbeat = Heartbeat(
            self.running,
            self.scripts,
            self.keys,
            lease_ms=settings.lease_ms,
            every_s=settings.heartbeat_s,
            on_error=self.outage.down,
        )

    @property
    def tasks(self) -> Mapping[str, Task[Any, Any]]:
        """Task name -> task, of the run."""
        return self.plan.tasks

    @property
    def observers(self) -> list[Observer]:
        """Told of every job start and end (the instruments add theirs before start)."""
        return self.jobs.observers

    @property
    def limits(self) -> Mapping[str, int]:
        """Queue -> how many of its jobs this process runs at once."""
        return self.capacity.limits

    @property
    def total(self) -> int | None:
        """The process-wide cap, or None."""
        return self.capacity.total

    def spawn(self, name: str, loop: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Start ``loop`` supervised (restarted with backoff when it fails)."""
        return self.supervisor.spawn(name, loop)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and start fetching (raises BrokerUnavailable if Redis is down)."""
        await self.broker.connect()
        spawn = self.supervisor.spawn
        for q in self.queues:
            self._fetchers[q] = spawn(f"fetch:{q}", functools.partial(self._fetch_loop, q))
        self.heartbeat.start(spawn)
        self.busy.start(spawn)
        for n, service in enumerate(self.services):
            name = getattr(service, "__name__", type(service).__name__)
            self._services.append(spawn(f"service:{n}:{name}", functools.partial(service, self)))
        s = self.settings  # dead letters expire on a timer too (dead_ttl)
        trim = functools.partial(trim_dead, self.scripts, self.keys, s.dead_max, s.dead_ttl_ms)
        self._services.append(spawn("dead_trim", trim))
        log.info(
            "worker %s serving %s (lease %.1f s, heartbeat %.1f s)",
            self.worker_id,
            ", ".join(f"{q}={n}" for q, n in self.capacity.limits.items()),
            s.lease_timeout_s,
            s.heartbeat_s,
        )

    def _give_up(self, reason: str) -> None:
        """A loop kept failing: drain and stop (the process exits non-zero)."""
        self.unhealthy = reason
        self.stopped.set()

    async def stop_services(self) -> None:
        for task in self._services:
            task.cancel()
        await asyncio.gather(*self._services, return_exceptions=True)
        self._services.clear()

    async def stop_fetching(self) -> None:
        """Stop leasing new jobs now (and stop the services); running jobs go on."""
        self.stopping = True
        self.shutting_down.set()
        await self.stop_services()
        for wait in self._waits.values():
            wait.cancel()
        # a wait pipelined with its fetch is woken, not cancelled: cancelling could drop
        # the reply of a fetch that already leased jobs
        halted = [self.keys[q].halt(self.worker_id) for q in self._idle]
        if halted:
            await self._halt_calls(self.broker.halt, halted)
        # loops waiting for a free slot, a backoff or an idle wait end at once; only a
        # fetch script in flight is waited for (its jobs are then run or requeued)
        self.capacity.close()
        for q, t in self._fetchers.items():
            if q not in self._in_fetch:
                t.cancel()
        fetchers = list(self._fetchers.values())
        done, pending = await asyncio.wait(fetchers, timeout=2.0) if fetchers else (set(), set())
        self.fetchers_cut_off = len(pending)
        for t in pending:
            t.cancel()
        del done
        if halted:
            await self._halt_calls(self.broker.unhalt, halted)

    async def _halt_calls(self, call: Callable[[str], Awaitable[None]], keys: list[str]) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):  # Redis unreachable: the waits are cancelled
                await asyncio.gather(*(call(key) for key in keys), return_exceptions=True)

    async def stop_heartbeat(self) -> None:
        await self.heartbeat.stop()

    # -- fetching --------------------------------------------------------------------

    async def _fetch_loop(self, queue: str) -> None:
        k = self.keys[queue]
        halt = k.halt(self.worker_id)
        lease_ms = self.settings.lease_ms
        wait_s: float | None = None  # set: block on the wake list first (idle)
        timer: asyncio.TimerHandle | None = None
        while not self.stopping:
            n = await self.capacity.acquire(queue, MAX_FETCH)
            if self.stopping:
                self.capacity.release(queue, n)
                return
            token = f"{self.worker_id}:{next(self._seq)}"
            if wait_s is not None:
                self._idle.add(queue)
            self._in_fetch.add(queue)
            try:
                reply = await self.scripts.fetch(k, n, lease_ms, token, halt=halt, wait_s=wait_s)
            except TRANSIENT_ERRORS as exc:
                self.capacity.release(queue, n)
                self.outage.down(exc)
                await asyncio.sleep(self.outage.retry_delay())
                continue
            except Exception:
                self.capacity.release(queue, n)  # the supervisor logs it and restarts
                raise
            finally:
                wait_s = None
                self._idle.discard(queue)
                self._in_fetch.discard(queue)
                if timer is not None:
                    timer.cancel()
                    timer = None
            self.outage.up()
            self.capacity.release(queue, n - len(reply.jobs))
            if reply.recovered:
                log.warning(
                    "recovered %d job(s) of queue %s whose worker stopped renewing its lease: %s",
                    len(reply.recovered),
                    queue,
                    " ".join(reply.recovered[:20]),
                )
            for fetched in reply.jobs:
                self._start_job(queue, token, fetched)
            if reply.buried:  # dead-lettered by the fetch: their waiters learn it now
                await self.outcomes.buried(k, reply.buried)
            if len(reply.jobs) == n:
                continue  # there may be more: fetch again as soon as slots are free
            self._pending[queue] = (reply.pending, time.monotonic())
            if self.burst and self._burst_drained():
                self.stopped.set()
                return
            idle_s = IDLE_WAIT_S
            if reply.next_due_ms >= 0:
                due_s = max((reply.next_due_ms - reply.now_ms) / 1000, 0.001)
                if due_s < idle_s:
                    # Redis times out blocked clients only every 100 ms (hz 10): a local
                    # timer pushes a wake token right when the next job is due instead
                    timer = asyncio.get_running_loop().call_later(due_s, self._wake, k)
                    idle_s = due_s + 0.1
            if self.burst:
                idle_s = min(idle_s, 0.05)
            if self.pipelined_waits:
                wait_s = idle_s  # the next fetch blocks on the wake list first
                if reply.jobs:
                    await asyncio.sleep(0)  # let the jobs just leased start before that
                continue
            await self._wait_for_work(queue, k, idle_s)  # the next fetch cancels the timer

    async def _wait_for_work(self, queue: str, k: QueueKeys, timeout_s: float) -> None:
        wait = asyncio.create_task(self.broker.wait_for_work(k, timeout_s))
        self._waits[queue] = wait
        try:
            await wait
        except asyncio.CancelledError:
            if not self.stopping:
                raise
        except TRANSIENT_ERRORS as exc:
            self.outage.down(exc)
            await asyncio.sleep(self.outage.retry_delay())
        finally:
            self._waits.pop(queue, None)

    def _wake(self, k: QueueKeys) -> None:
        task = asyncio.create_task(self.broker.wake(k), name=f"wake:{k.queue}")
        self._wakers.add(task)
        task.add_done_callback(self._wakers.discard)
        task.add_done_callback(log_failure)

    def _burst_drained(self) -> bool:
        if self.running:
            return False
        return all(
            q in self._pending
            and self._pending[q][0] == 0
            and self._pending[q][1] >= self._idle_since
            for q in self.queues
        )

    # -- running jobs -------------------------------------------------------------

    def _start_job(self, queue: str, token: str, fetched: FetchedJob) -> None:
        run = Running(queue, fetched.id, "?", token, fetched.attempt, time.monotonic())
        self.running[fetched.id] = run
        run.task = asyncio.create_task(self._job_main(run, fetched), name=fetched.id)

    async def _job_main(self, run: Running, fetched: FetchedJob) -> None:
        try:
            await self.jobs.run(run, self.keys[run.queue], fetched)
        finally:
            # the same job may run here again after this run lost its lease: keep that one
            if self.running.get(run.job_id) is run:
                del self.running[run.job_id]
            self.capacity.release(run.queue, 1)
            if not self.running:
                self._idle_since = time.monotonic()

    # -- probes ----------------------------------------------------------------------

    def liveness(self) -> str | None:
        """None while alive, else why not (the heartbeat task died, or a loop keeps
        failing)."""
        if not self.heartbeat.alive:
            return "heartbeat stopped"
        return self.supervisor.liveness()

    def readiness(self) -> str | None:
        """None while fetching jobs, else why not (draining, or Redis unavailable)."""
        if self.stopping or self.stopped.is_set():
            return "draining"
        if self.outage.ongoing:
            return "redis unavailable"
        return None
