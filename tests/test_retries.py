"""Failures: backoff schedules, Retry, retry counts, dead letters and reviving them."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from aioworker import Backoff, JobContext, JobDead, JobStatus, Retry
from tests.worker_kit import MakeWorker, burst, running


async def test_exponential_backoff_without_jitter_follows_the_schedule(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()
    starts: list[float] = []

    @w.task(retries=3, backoff=Backoff(base_s=0.2, factor=2.0, jitter=False))
    async def flaky(ctx: JobContext) -> None:
        starts.append(time.monotonic())
        raise ConnectionError(f"attempt {ctx.attempt} failed")

    job = await flaky.enqueue()
    stats = await burst(w)

    assert stats == {"complete": 0, "retry": 3, "dead": 1, "requeue": 0, "defer": 0, "lost": 0}
    assert len(starts) == 4
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    for gap, expected in zip(gaps, [0.2, 0.4, 0.8], strict=True):
        assert expected - 0.01 <= gap < expected + 0.5, gaps
    info = await job.info()
    assert info.status is JobStatus.DEAD
    assert info.attempts == 4
    assert info.error is not None
    assert info.error["message"] == "attempt 4 failed"


async def test_backoff_cap_bounds_every_delay(make_worker: MakeWorker) -> None:
    w = make_worker()
    starts: list[float] = []

    @w.task(retries=3, backoff=Backoff(base_s=0.1, factor=100.0, cap_s=0.25, jitter=False))
    async def flaky(ctx: JobContext) -> None:
        starts.append(time.monotonic())
        raise ValueError("no")

    await flaky.enqueue()
    await burst(w)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 3
    assert 0.09 <= gaps[0] < 0.6, gaps
    for gap in gaps[1:]:
        assert 0.24 <= gap < 0.75, gaps


async def test_retry_delay_overrides_the_backoff(make_worker: MakeWorker) -> None:
    # a backoff of a minute would make this test time out if the delay were ignored
    w = make_worker(backoff=Backoff(base_s=60, jitter=False))
    starts: list[float] = []

    @w.task(retries=2)
    async def poll(ctx: JobContext) -> str:
        starts.append(time.monotonic())
        if ctx.attempt == 1:
            raise Retry(delay=0.3, reason="not ready yet")
        if ctx.attempt == 2:
            raise Retry(delay=timedelta(milliseconds=200))
        return f"ready after {ctx.attempt} attempts"

    job = await poll.enqueue()
    stats = await burst(w)

    assert await job.result(timeout=5) == "ready after 3 attempts"
    assert stats["retry"] == 2
    assert stats["complete"] == 1
    assert len(starts) == 3
    assert 0.29 <= starts[1] - starts[0] < 1.0
    assert 0.19 <= starts[2] - starts[1] < 1.0


async def test_retry_waits_scheduled_with_its_reason_recorded(make_worker: MakeWorker) -> None:
    w = make_worker()
    attempts: list[int] = []

    @w.task(retries=1)
    async def later(ctx: JobContext) -> None:
        attempts.append(ctx.attempt)
        raise Retry(delay=60, reason="rate limited")

    job = await later.enqueue()
    before = datetime.now(UTC)
    async with running(w):
        for _ in range(100):
            if await job.status() is JobStatus.SCHEDULED:
                break
            await asyncio.sleep(0.05)
        info = await job.info()
    assert attempts == [1]
    assert info.status is JobStatus.SCHEDULED
    assert info.attempts == 1
    assert info.error is not None
    assert info.error["type"] == "Retry"
    assert info.error["message"] == "rate limited"
    assert info.scheduled_at is not None
    wait = (info.scheduled_at - before).total_seconds()
    assert 55 < wait < 65
    assert await w.client.counts("default") == {"ready": 0, "scheduled": 1, "active": 0, "dead": 0}


async def test_retry_without_delay_uses_the_task_backoff(make_worker: MakeWorker) -> None:
    w = make_worker()
    starts: list[float] = []

    @w.task(retries=1, backoff=Backoff(base_s=0.3, jitter=False))
    async def again(ctx: JobContext) -> int:
        starts.append(time.monotonic())
        if ctx.attempt == 1:
            raise Retry()
        return ctx.attempt

    job = await again.enqueue()
    await burst(w)
    assert await job.result(timeout=5) == 2
    assert 0.29 <= starts[1] - starts[0] < 1.0


async def test_retries_zero_is_never_retried(make_worker: MakeWorker) -> None:
    w = make_worker()
    runs: list[int] = []

    @w.task(retries=0)
    async def once(ctx: JobContext) -> None:
        runs.append(ctx.attempt)
        raise ValueError("bad input")

    @w.task(retries=0)
    async def asks(ctx: JobContext) -> None:
        runs.append(ctx.attempt)
        raise Retry(delay=0)

    first = await once.enqueue()
    second = await asks.enqueue()
    stats = await burst(w)

    assert runs == [1, 1]
    assert stats["retry"] == 0
    assert stats["dead"] == 2
    for job in (first, second):
        info = await job.info()
        assert info.status is JobStatus.DEAD
        assert info.attempts == 1


async def test_per_enqueue_retries_override_the_task(make_worker: MakeWorker) -> None:
    w = make_worker()
    runs: Counter[str] = Counter()

    @w.task(retries=5)
    async def many(ctx: JobContext, label: str) -> None:
        runs[label] += 1
        raise RuntimeError(label)

    @w.task(retries=0)
    async def none(ctx: JobContext, label: str) -> None:
        runs[label] += 1
        raise RuntimeError(label)

    await many.options(retries=1).enqueue("five-becomes-one")
    await many.options(retries=0).enqueue("five-becomes-zero")
    await none.options(retries=2).enqueue("zero-becomes-two")
    await none.enqueue("zero-stays")
    stats = await burst(w)

    assert runs == {
        "five-becomes-one": 2,
        "five-becomes-zero": 1,
        "zero-becomes-two": 3,
        "zero-stays": 1,
    }
    assert stats["dead"] == 4
    assert stats["retry"] == 3


async def test_worker_default_retries_apply_to_tasks_without_their_own(
    make_worker: MakeWorker,
) -> None:
    w = make_worker(retries=2)
    runs: list[int] = []

    @w.task()
    async def fails(ctx: JobContext) -> None:
        runs.append(ctx.attempt)
        assert ctx.max_attempts == 3
        raise RuntimeError("no")

    await fails.enqueue()
    await burst(w)
    assert runs == [1, 2, 3]


async def test_exhausted_job_is_dead_with_type_message_and_traceback(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()
    attempts: list[int] = []

    @w.task(retries=2)
    async def charge_card(ctx: JobContext, amount: int) -> None:
        attempts.append(ctx.attempt)
        raise ValueError(f"card declined for {amount}")

    job = await charge_card.enqueue(42)
    stats = await burst(w)

    assert attempts == [1, 2, 3]
    assert stats["retry"] == 2
    assert stats["dead"] == 1
    info = await job.info()
    assert info.status is JobStatus.DEAD
    assert info.attempts == 3
    assert info.args == [42]
    assert info.error is not None
    assert info.error["type"] == "ValueError"
    assert info.error["message"] == "card declined for 42"
    assert "charge_card" in info.error["traceback"]
    assert "ValueError: card declined for 42" in info.error["traceback"]

    with pytest.raises(JobDead) as caught:
        await job.result(timeout=5)
    assert caught.value.job_id == job.id
    assert caught.value.error["type"] == "ValueError"
    assert caught.value.error["message"] == "card declined for 42"
    counts = await w.client.counts("default")
    assert counts == {"ready": 0, "scheduled": 0, "active": 0, "dead": 1}


async def test_dead_jobs_run_again_after_retry_dead(make_worker: MakeWorker) -> None:
    w = make_worker()
    broken = {"on": True}
    runs: Counter[str] = Counter()

    @w.task(retries=1)
    async def sync(ctx: JobContext, account: str) -> str:
        runs[account] += 1
        if broken["on"]:
            raise ConnectionError("upstream down")
        return f"{account} synced on attempt {ctx.attempt}"

    jobs = [await sync.enqueue(name) for name in ("a", "b", "c")]
    await burst(w)
    assert runs == {"a": 2, "b": 2, "c": 2}
    assert (await w.client.counts("default"))["dead"] == 3

    broken["on"] = False
    # reviving by id moves only those jobs; unknown ids are skipped
    assert await w.client.retry_dead("default", [jobs[0].id, "no-such-job"]) == 1
    assert await jobs[0].status() is JobStatus.QUEUED
    assert await jobs[1].status() is JobStatus.DEAD
    await burst(w)
    assert await jobs[0].result(timeout=5) == "a synced on attempt 1"
    assert runs == {"a": 3, "b": 2, "c": 2}

    # the rest, all at once; attempts start afresh
    assert await w.client.retry_dead("default") == 2
    assert await w.client.retry_dead("default") == 0
    await burst(w)
    assert await jobs[1].result(timeout=5) == "b synced on attempt 1"
    assert await jobs[2].result(timeout=5) == "c synced on attempt 1"
    assert runs == {"a": 3, "b": 3, "c": 3}
    counts = await w.client.counts("default")
    assert counts == {"ready": 0, "scheduled": 0, "active": 0, "dead": 0}


async def test_dead_set_is_trimmed_to_dead_max(make_worker: MakeWorker) -> None:
    w = make_worker(dead_max=3, queues={"default": 1})

    @w.task(retries=0)
    async def fail(ctx: JobContext, n: int) -> None:
        await asyncio.sleep(0.005)  # one job at a time, so each dies a few ms after the last
        raise RuntimeError(f"job {n}")

    jobs = [await fail.enqueue(n) for n in range(7)]
    stats = await burst(w)
    assert stats["dead"] == 7
    assert (await w.client.counts("default"))["dead"] == 3
    # the newest dead jobs are kept
    revived = await w.client.retry_dead("default")
    assert revived == 3
    ready = await w.client.counts("default")
    assert ready["ready"] == 3
    statuses = [await j.status() for j in jobs[-3:]]
    assert statuses == [JobStatus.QUEUED] * 3


async def test_dead_jobs_older_than_dead_ttl_are_dropped(make_worker: MakeWorker) -> None:
    w = make_worker(dead_ttl=0.3)

    @w.task(retries=0)
    async def fail(ctx: JobContext) -> None:
        raise RuntimeError("no")

    await fail.enqueue()
    await burst(w)
    assert (await w.client.counts("default"))["dead"] == 1
    await asyncio.sleep(0.5)
    await fail.enqueue()
    await burst(w)
    # the second death trimmed the first, which was older than dead_ttl
    assert (await w.client.counts("default"))["dead"] == 1
