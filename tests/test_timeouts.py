"""Job timeouts: a run over its time is cancelled, counted as a failure, retried, then dead."""

from __future__ import annotations

import asyncio
import time

import pytest

from aioworker import JobContext, JobDead, JobStatus
from tests.worker_kit import MakeWorker, burst


async def test_timed_out_job_is_cancelled_retried_then_dead(make_worker: MakeWorker) -> None:
    w = make_worker()
    cancelled: list[int] = []
    finished: list[int] = []

    @w.task(timeout=0.2, retries=2)
    async def stuck(ctx: JobContext) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(ctx.attempt)
            raise
        finished.append(ctx.attempt)

    job = await stuck.enqueue()
    started = time.monotonic()
    stats = await burst(w)
    elapsed = time.monotonic() - started

    assert cancelled == [1, 2, 3]
    assert finished == []
    assert stats == {"complete": 0, "retry": 2, "dead": 1, "requeue": 0, "defer": 0, "lost": 0}
    assert elapsed < 5.0
    info = await job.info()
    assert info.status is JobStatus.DEAD
    assert info.attempts == 3
    assert info.error is not None
    assert info.error["type"] == "Timeout"
    assert "0.2" in info.error["message"]
    with pytest.raises(JobDead) as caught:
        await job.result(timeout=5)
    assert caught.value.error["type"] == "Timeout"


async def test_timeout_set_at_enqueue_overrides_the_task(make_worker: MakeWorker) -> None:
    w = make_worker()
    runs: list[str] = []

    @w.task(retries=0)
    async def slow(ctx: JobContext, label: str, seconds: float) -> str:
        runs.append(label)
        await asyncio.sleep(seconds)
        return label

    @w.task(retries=0, timeout=0.1)
    async def tight(ctx: JobContext, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "made it"

    limited = await slow.options(timeout=0.2).enqueue("limited", 30)
    unlimited = await slow.enqueue("unlimited", 0.4)
    relaxed = await tight.options(timeout=5).enqueue(0.3)
    await burst(w)

    assert sorted(runs) == ["limited", "unlimited"]
    with pytest.raises(JobDead) as caught:
        await limited.result(timeout=5)
    assert caught.value.error["type"] == "Timeout"
    assert await unlimited.result(timeout=5) == "unlimited"
    assert await relaxed.result(timeout=5) == "made it"


async def test_a_job_that_finishes_in_time_completes(make_worker: MakeWorker) -> None:
    w = make_worker()

    @w.task(timeout=2, retries=0)
    async def quick(ctx: JobContext) -> int:
        await asyncio.sleep(0.05)
        return ctx.attempt

    job = await quick.enqueue()
    await burst(w)
    assert await job.result(timeout=5) == 1


async def test_timed_out_job_does_not_hold_up_other_jobs(make_worker: MakeWorker) -> None:
    w = make_worker(queues={"default": 2})
    done: list[int] = []

    @w.task(timeout=0.5, retries=0)
    async def stuck(ctx: JobContext) -> None:
        await asyncio.sleep(30)

    @w.task()
    async def work(ctx: JobContext, n: int) -> None:
        await asyncio.sleep(0.01)
        done.append(n)

    stuck_job = await stuck.enqueue()
    for n in range(10):
        await work.enqueue(n)
    stats = await burst(w)
    assert sorted(done) == list(range(10))
    assert stats["complete"] == 10
    assert stats["dead"] == 1
    assert await stuck_job.status() is JobStatus.DEAD


async def test_a_timeout_error_raised_by_the_job_itself_keeps_its_own_type(
    make_worker: MakeWorker,
) -> None:
    # the job's own TimeoutError (say, from a client library) is an ordinary failure,
    # not the worker's timeout: its type and message are kept
    w = make_worker()

    @w.task(retries=0)
    async def call_upstream(ctx: JobContext) -> None:
        raise TimeoutError("upstream did not answer in 3 s")

    @w.task(retries=0, timeout=10)
    async def call_with_deadline(ctx: JobContext) -> None:
        await asyncio.wait_for(asyncio.sleep(5), 0.05)

    no_limit = await call_upstream.enqueue()
    with_limit = await call_with_deadline.enqueue()
    started = time.monotonic()
    await burst(w)
    assert time.monotonic() - started < 5

    for job in (no_limit, with_limit):
        info = await job.info()
        assert info.status is JobStatus.DEAD
        assert info.error is not None
        assert info.error["type"] == "TimeoutError", info.error
    own = (await no_limit.info()).error
    assert own is not None
    assert own["message"] == "upstream did not answer in 3 s"
