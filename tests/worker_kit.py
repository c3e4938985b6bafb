"""Helpers for tests that run a ``Worker`` in this process.

- ``worker_factory(url, prefix)``: makes workers on the test's prefix with short leases and
  backoffs, and closes them all on exit (the ``make_worker`` fixture wraps it).
- ``burst(worker)``: runs the worker until its queues are drained, bounded so a hang fails fast.
- ``running(worker)`` / ``running_all(*workers)``: run workers in the background for a block,
  then stop them by cancelling ``run()``.
- ``wait_for_status(worker, job_id, status)``: polls a job until it reaches ``status``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

from aioworker import Backoff, JobStatus, Worker

MakeWorker = Callable[..., Worker]

LEASE_TIMEOUT_S = 2
BACKOFF_BASE_S = 0.05
BURST_TIMEOUT_S = 20.0


@asynccontextmanager
async def worker_factory(url: str, prefix: str) -> AsyncIterator[MakeWorker]:
    """Yield ``make(**kwargs) -> Worker``; every worker it made is closed on exit.

    Workers use ``prefix``, a lease of ``LEASE_TIMEOUT_S`` and a jitter-free backoff of
    ``BACKOFF_BASE_S`` unless the call's own keywords say otherwise.
    """
    made: list[Worker] = []

    def make(**kwargs: Any) -> Worker:
        kwargs.setdefault("prefix", prefix)
        kwargs.setdefault("lease_timeout", LEASE_TIMEOUT_S)
        kwargs.setdefault("backoff", Backoff(base_s=BACKOFF_BASE_S, jitter=False))
        w = Worker(url, **kwargs)
        made.append(w)
        return w

    yield make
    for w in made:
        await w.close()


async def burst(
    worker: Worker, *, timeout_s: float = BURST_TIMEOUT_S, **kwargs: Any
) -> dict[str, int]:
    """Run the worker until its queues are drained (bounded, so a hang fails fast).

    ``kwargs`` go to ``Worker.run`` (``queues``, ``concurrency``).
    """
    return await asyncio.wait_for(worker.run(burst=True, handle_signals=False, **kwargs), timeout_s)


@asynccontextmanager
async def running_all(
    *workers: Worker, **kwargs: Any
) -> AsyncIterator[list[asyncio.Task[dict[str, int]]]]:
    """Run the workers in the background for the block, then stop them all by cancelling.

    ``kwargs`` go to each ``Worker.run``.  Every task is cancelled before any is awaited.
    """
    tasks = [asyncio.create_task(w.run(handle_signals=False, **kwargs)) for w in workers]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task


@asynccontextmanager
async def running(worker: Worker, **kwargs: Any) -> AsyncIterator[asyncio.Task[dict[str, int]]]:
    """Run the worker in the background for the block, then stop it by cancelling."""
    async with running_all(worker, **kwargs) as (task,):
        yield task


async def wait_for_status(worker: Worker, job_id: str, status: JobStatus) -> None:
    """Poll the job every 25 ms, for up to 5 s, until it reaches ``status``."""
    job = worker.job(job_id)
    for _ in range(200):
        if await job.status() is status:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"job {job_id} never reached {status}: {await job.status()}")
