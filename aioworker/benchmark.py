"""Benchmark a task of the user's own app: ``aioworker bench app:worker TASK``.

It enqueues N jobs of the task in bulk, runs them (in this process, or waits for the
workers already running against the same Redis), and reports throughput, latency
percentiles, peak RSS and the Redis cost per job (from ``INFO commandstats``).

In-process runs measure enqueue -> start latency and run time per job through an
observer; against remote workers only completion is visible, so latency is
enqueue -> finish from the results' Redis time stamps.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .job import JobRecord, JobSpec
from .worker import Worker

__all__ = ("BenchReport", "percentile", "run_bench")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


@dataclass(slots=True)
class BenchReport:
    """Figures of one benchmark run (times in ms unless named otherwise)."""

    task: str
    jobs: int
    concurrency: int
    mode: str
    enqueue_s: float = 0.0
    enqueue_per_s: float = 0.0
    run_s: float = 0.0
    jobs_per_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    run_time_ms: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    redis_commands_per_job: float = 0.0
    redis_calls_per_job: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Timings:
    """Observer that records start latency and run time of each job."""

    def __init__(self, clock_offset_ms: float) -> None:
        self.offset_ms = clock_offset_ms  # local clock - Redis clock
        self.latency_ms: list[float] = []
        self.run_ms: list[float] = []
        self.done = 0

    def job_started(self, job: JobRecord) -> None:
        self.latency_ms.append(time.time() * 1000 - self.offset_ms - job.enqueued_ms)

    def job_finished(self, job: JobRecord, outcome: str, duration_s: float) -> None:
        self.run_ms.append(duration_s * 1000)
        self.done += 1


#: Commands clients send themselves; everything else we cause runs inside scripts.
_TOP_LEVEL = {"evalsha", "eval", "blpop", "blmove", "ping", "info", "time"}


async def _command_stats(worker: Worker) -> tuple[int, int]:
    """(all commands, client round trips) executed by the Redis server so far.

    ``INFO commandstats`` counts commands run inside Lua scripts too; round trips are
    the calls of the commands clients send directly.
    """
    stats = await worker.client.broker.command_stats()
    commands = sum(stats.values())
    trips = sum(n for name, n in stats.items() if name in _TOP_LEVEL)
    return commands, trips


def _rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


async def run_bench(
    worker: Worker,
    task_name: str,
    *,
    jobs: int,
    concurrency: int,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    in_process: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> BenchReport:
    """Enqueue ``jobs`` jobs of ``task_name`` and measure how they run.

    :param in_process: run them in this process (True) or wait for running workers.
    :param progress: called with (done, total) about ten times a second.
    :raises UnknownTaskError: if the task is not registered on ``worker``.
    """
    from .errors import UnknownTaskError

    task = worker.tasks.get(task_name)
    if task is None:
        raise UnknownTaskError(
            f"no task named {task_name!r} (known: {', '.join(sorted(worker.tasks))})"
        )
    report = BenchReport(task_name, jobs, concurrency, "in-process" if in_process else "remote")
    spec = task.call(*args, **(kwargs or {}))
    specs = [JobSpec(spec.task, spec.queue, spec.args, spec.kwargs) for _ in range(jobs)]

    broker = worker.client.broker
    await broker.connect()
    redis_ms = await broker.redis_time_ms()
    offset = time.time() * 1000 - redis_ms

    started = time.perf_counter()
    handles = []
    for start in range(0, jobs, 10_000):
        handles += await worker.enqueue_many(specs[start : start + 10_000])
    report.enqueue_s = time.perf_counter() - started
    report.enqueue_per_s = jobs / report.enqueue_s if report.enqueue_s else 0.0
    cmds_0, trips_0 = await _command_stats(worker)

    timings = _Timings(offset)
    # the handles and specs above are long-lived: keep the collector from rescanning them
    gc.collect()
    gc.freeze()
    started = time.perf_counter()
    if in_process:
        worker.observers.append(timings)
        queue_limit = worker.queues.get(task.queue)
        worker.queues[task.queue] = concurrency  # the queue's own limit must not cap the run
        try:
            runner = asyncio.create_task(
                worker.run(queues=[task.queue], burst=True, handle_signals=False)
            )
            while not runner.done():
                if progress is not None:
                    progress(timings.done, jobs)
                await asyncio.wait([runner], timeout=0.1)
            report.outcomes = await runner
        finally:
            worker.observers.remove(timings)
            if queue_limit is None:
                del worker.queues[task.queue]
            else:
                worker.queues[task.queue] = queue_limit
        report.latency_ms = _summary(timings.latency_ms)
        report.run_time_ms = _summary(timings.run_ms)
    else:
        counts = await worker.client.counts(task.queue)
        while counts["ready"] + counts["scheduled"] + counts["active"] > 0:
            if progress is not None:
                progress(jobs - counts["ready"] - counts["active"] - counts["scheduled"], jobs)
            await asyncio.sleep(0.1)
            counts = await worker.client.counts(task.queue)
        latencies = []
        for h in handles[:: max(1, jobs // 1000)]:
            info = await h.info()
            if info.finished_at and info.enqueued_at:
                latencies.append((info.finished_at - info.enqueued_at).total_seconds() * 1000)
        report.latency_ms = _summary(latencies)
    report.run_s = time.perf_counter() - started
    report.jobs_per_s = jobs / report.run_s if report.run_s else 0.0
    if progress is not None:
        progress(jobs, jobs)
    cmds_1, trips_1 = await _command_stats(worker)
    # the run's own commands (the enqueue phase and our INFO call excluded)
    report.redis_commands_per_job = round(max(cmds_1 - cmds_0 - 1, 0) / jobs, 2)
    report.redis_calls_per_job = round(max(trips_1 - trips_0 - 1, 0) / jobs, 2)
    report.peak_rss_mb = _rss_mb()
    return report


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "p50": round(percentile(values, 50), 3),
        "p90": round(percentile(values, 90), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3),
    }
