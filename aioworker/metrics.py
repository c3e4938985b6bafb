"""Prometheus metrics of a worker process (``--metrics-port``, ``Worker(metrics_port=...)``).

Optional: install ``aioworker[metrics]`` (``prometheus-client``).  Metrics, labelled by
``queue`` and ``task`` only (never by job id or arguments):

=========================================  ==========  ===================================
name                                       type        what
=========================================  ==========  ===================================
``aioworker_jobs_started_total``           counter     runs that entered the job function
``aioworker_jobs_succeeded_total``         counter     runs that returned
``aioworker_jobs_failed_total``            counter     runs that raised or timed out
``aioworker_jobs_retried_total``           counter     jobs scheduled for another attempt
``aioworker_jobs_dead_total``              counter     jobs dead-lettered (also bad input)
``aioworker_jobs_interrupted_total``       counter     runs interrupted by a shutdown
``aioworker_jobs_deferred_total``          counter     jobs put back by an admission gate
``aioworker_jobs_cancelled_total``         counter     runs cancelled by an operator
``aioworker_jobs_in_flight``               gauge       runs inside the job function now
``aioworker_job_duration_seconds``         histogram   run time, also labelled ``outcome``
``aioworker_job_latency_seconds``          histogram   due time to start, first attempts
``aioworker_job_deferral_seconds``         histogram   delays asked by gates (limiter waits)
``aioworker_queue_jobs``                   gauge       jobs by ``queue`` and ``state``
``aioworker_queue_paused``                 gauge       1 while the queue is paused
=========================================  ==========  ===================================

Latency is measured from the job's due time (enqueue time, plus its delay for delayed
jobs; Redis time) to the start of its first attempt, with the local clock corrected by
its offset to Redis ``TIME`` (measured every refresh).  Queue depths (``state`` ready,
scheduled, running, dead) are read by a background service every ``refresh_s`` seconds
(default 5) for the queues this worker serves, not on each scrape; every worker of a
queue reports the same depth, so aggregate with ``max``, not ``sum``.  The process's
default registry (``prometheus_client.REGISTRY``: process and Python collectors, and
any metrics of your own) is exposed on the same endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from .broker import TRANSIENT_ERRORS
from .errors import MissingDependency
from .inspect import queue_stats
from .job import JobRecord

if TYPE_CHECKING:
    from .extensions import RunContext

__all__ = ("CONTENT_TYPE", "Metrics", "require_prometheus")

log = logging.getLogger("aioworker.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

_COUNTER_BY_OUTCOME = {
    "complete": "succeeded",
    "retry": "retried",
    "dead": "dead",
    "requeue": "interrupted",
    "defer": "deferred",
    "cancel": "cancelled",
}


def require_prometheus() -> Any:
    """The ``prometheus_client`` module.

    :raises MissingDependency: if it is not installed (the message names the command).
    """
    try:
        import prometheus_client
    except ImportError:
        raise MissingDependency(
            "the metrics endpoint needs prometheus-client: pip install 'aioworker[metrics]'"
        ) from None
    return prometheus_client


class Metrics:
    """Counters and histograms fed as an Observer, queue gauges fed as a Service.

    :param runtime: the worker runtime measured.
    :param refresh_s: seconds between queue depth reads.
    :raises MissingDependency: if ``prometheus-client`` is not installed.
    """

    def __init__(self, runtime: RunContext, refresh_s: float = 5.0) -> None:
        pc = require_prometheus()
        self._pc = pc
        self.runtime = runtime
        self.refresh_s = refresh_s
        self.registry = pc.CollectorRegistry(auto_describe=True)
        r = self.registry
        labels = ("queue", "task")
        self.started = pc.Counter(
            "aioworker_jobs_started", "Runs that entered the job function.", labels, registry=r
        )
        self.failed = pc.Counter(
            "aioworker_jobs_failed", "Runs that raised or timed out.", labels, registry=r
        )
        helps = {
            "succeeded": "Runs that returned a result.",
            "retried": "Jobs scheduled for another attempt.",
            "dead": "Jobs dead-lettered.",
            "interrupted": "Runs interrupted by a shutdown and requeued.",
            "deferred": "Jobs put back by an admission gate without using an attempt.",
            "cancelled": "Runs cancelled at an operator's request.",
        }
        self.by_outcome = {
            name: pc.Counter(f"aioworker_jobs_{name}", text, labels, registry=r)
            for name, text in helps.items()
        }
        self.in_flight = pc.Gauge(
            "aioworker_jobs_in_flight", "Runs inside the job function now.", labels, registry=r
        )
        self.duration = pc.Histogram(
            "aioworker_job_duration_seconds",
            "Run time of jobs, by outcome.",
            (*labels, "outcome"),
            buckets=BUCKETS,
            registry=r,
        )
        self.latency = pc.Histogram(
            "aioworker_job_latency_seconds",
            "Time from a job's due time to the start of its first attempt.",
            labels,
            buckets=BUCKETS,
            registry=r,
        )
        self.deferral = pc.Histogram(
            "aioworker_job_deferral_seconds",
            "Delays admission gates (rate limiters, concurrency caps) put jobs back for.",
            labels,
            buckets=BUCKETS,
            registry=r,
        )
        self.depth = pc.Gauge(
            "aioworker_queue_jobs", "Jobs of a queue by state.", ("queue", "state"), registry=r
        )
        self.paused = pc.Gauge(
            "aioworker_queue_paused", "1 while the queue is paused.", ("queue",), registry=r
        )
        self.offset_ms = 0.0  # Redis TIME minus the local clock
        self._inside: set[str] = set()

    # -- observer ---------------------------------------------------------------------

    def job_started(self, job: JobRecord) -> None:
        self.started.labels(job.queue, job.task).inc()
        self.in_flight.labels(job.queue, job.task).inc()
        self._inside.add(job.id)
        if job.attempt == 1:
            p = job.payload
            due = p["at"] if "at" in p else job.enqueued_ms + int(p.get("d", 0))
            now = time.time() * 1000 + self.offset_ms
            self.latency.labels(job.queue, job.task).observe(max(now - due, 0.0) / 1000)

    def job_finished(self, job: JobRecord, outcome: str, duration_s: float) -> None:
        ran = job.id in self._inside
        if ran:
            self._inside.discard(job.id)
            self.in_flight.labels(job.queue, job.task).dec()
            self.duration.labels(job.queue, job.task, outcome).observe(duration_s)
            if outcome in ("retry", "dead"):
                self.failed.labels(job.queue, job.task).inc()
        if outcome == "defer":
            self.deferral.labels(job.queue, job.task).observe(duration_s)
        name = _COUNTER_BY_OUTCOME.get(outcome)
        if name is not None:
            self.by_outcome[name].labels(job.queue, job.task).inc()

    # -- service ----------------------------------------------------------------------

    async def run(self, run: RunContext) -> None:
        """The service: refresh the clock offset and the queue gauges until cancelled."""
        while True:
            with contextlib.suppress(*TRANSIENT_ERRORS):  # the runtime reports outages
                await self.refresh()
            await asyncio.sleep(self.refresh_s)

    async def refresh(self) -> None:
        """Measure the offset to Redis time and read the served queues' depths once."""
        rt = self.runtime
        t0 = time.time()
        redis_ms = await rt.broker.redis_time_ms()
        t1 = time.time()
        self.offset_ms = redis_ms - (t0 + t1) * 500
        for q in rt.queues:
            s = await queue_stats(rt.broker.scripts, rt.keys[q])
            for state, value in (
                ("ready", s.ready),
                ("scheduled", s.scheduled),
                ("running", s.running),
                ("dead", s.dead),
            ):
                self.depth.labels(q, state).set(value)
            self.paused.labels(q).set(1 if s.paused else 0)

    # -- exposition -------------------------------------------------------------------

    def exposition(self) -> bytes:
        """This worker's metrics and the default registry's, in the text format."""
        pc = self._pc
        return bytes(pc.generate_latest(self.registry)) + bytes(pc.generate_latest(pc.REGISTRY))

    def route(self) -> tuple[int, str, bytes]:
        """A :class:`~aioworker.health.HealthServer` route serving :meth:`exposition`."""
        return 200, CONTENT_TYPE, self.exposition()
