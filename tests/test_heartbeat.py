"""The heartbeat renews the leases of running jobs and reports only real losses."""

from __future__ import annotations

import asyncio
import logging

import pytest

from aioworker import JobContext, Worker


async def test_jobs_finishing_during_a_renewal_are_not_reported_as_lost(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A 1 s lease renews every 0.25 s while hundreds of short jobs finish all the time, so
    # many renewals race with acks that already released their leases.
    worker = Worker(redis_url, prefix=prefix, queues={"default": 300}, lease_timeout=1)
    ran: list[str] = []

    @worker.task(name="short")
    async def short(ctx: JobContext) -> None:
        await asyncio.sleep(0.02)
        ran.append(ctx.job_id)

    try:
        await worker.enqueue_many([short.call() for _ in range(3000)])
        with caplog.at_level(logging.WARNING, logger="aioworker"):
            stats = await worker.run(burst=True, handle_signals=False)
        assert stats["complete"] == 3000
        assert stats["lost"] == 0
        assert len(ran) == len(set(ran)) == 3000
        assert not [r for r in caplog.records if "lease lost" in r.getMessage()]
    finally:
        await worker.close()


async def test_a_running_job_whose_lease_was_taken_is_reported_once(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    worker = Worker(redis_url, prefix=prefix, lease_timeout=1)
    started = asyncio.Event()

    @worker.task(name="slow")
    async def slow(ctx: JobContext) -> None:
        started.set()
        await asyncio.sleep(1.5)

    try:
        job = await slow.enqueue()
        run = asyncio.create_task(worker.run(burst=True, handle_signals=False))
        await started.wait()
        # another worker's lease now: the running one must notice at its next renewal
        client = await worker.client.broker.connect()
        await client.hset(worker.client.keys("default").leases, job.id, "someone-else:1")
        with caplog.at_level(logging.WARNING, logger="aioworker"):
            stats = await run
        lost_lines = [r for r in caplog.records if "lease lost" in r.getMessage()]
        assert len(lost_lines) == 2  # the renewal notices it, then the ack is refused
        # the expired lease brought the job back, and its second run completed it
        assert stats["complete"] == 1 and stats["lost"] == 1
        assert (await job.info()).attempts == 2
    finally:
        await worker.close()


async def test_stop_drains_gracefully_and_lets_running_jobs_finish(
    redis_url: str, prefix: str
) -> None:
    worker = Worker(redis_url, prefix=prefix, shutdown_grace=10)
    started = asyncio.Event()

    @worker.task(name="slowish")
    async def slowish(ctx: JobContext) -> str:
        started.set()
        await asyncio.sleep(0.5)
        return "finished"

    try:
        job = await slowish.enqueue()
        run = asyncio.create_task(worker.run(handle_signals=False))
        await started.wait()
        worker.stop()  # like SIGTERM: no new jobs, the running one gets its grace
        stats = await run
        assert stats["complete"] == 1 and stats["requeue"] == 0
        assert await job.result(timeout=1) == "finished"
    finally:
        await worker.close()
