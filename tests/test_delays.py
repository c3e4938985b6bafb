"""Delayed jobs: enqueue_in / enqueue_at run no earlier than asked, and soon after."""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from datetime import UTC, datetime, timedelta

import redis.asyncio

from aioworker import JobContext, JobStatus
from tests.worker_kit import MakeWorker, burst, running

# Redis TIME and time.time() read the same clock here; this only absorbs ms rounding.
CLOCK_SLACK_S = 0.01


async def test_enqueue_in_runs_no_earlier_than_the_delay(make_worker: MakeWorker) -> None:
    w = make_worker()
    ran_at: dict[str, float] = {}

    @w.task()
    async def remind(ctx: JobContext, name: str) -> str:
        ran_at[name] = time.time()
        return name

    before = time.time()
    later = await remind.enqueue_in(0.8, "later")
    soon = await remind.enqueue_in(timedelta(milliseconds=300), "soon")
    now = await remind.enqueue("now")

    info = await later.info()
    assert info.status is JobStatus.SCHEDULED
    assert info.scheduled_at is not None
    assert 0.7 < info.scheduled_at.timestamp() - before < 1.5
    assert await now.status() is JobStatus.QUEUED
    counts = await w.client.counts("default")
    assert counts == {"ready": 1, "scheduled": 2, "active": 0, "dead": 0}

    await burst(w)

    assert await later.result(timeout=5) == "later"
    assert await soon.result(timeout=5) == "soon"
    assert ran_at["later"] >= before + 0.8 - CLOCK_SLACK_S
    assert ran_at["soon"] >= before + 0.3 - CLOCK_SLACK_S
    assert ran_at["later"] - before < 0.8 + 1.5
    assert ran_at["soon"] - before < 0.3 + 1.5
    assert ran_at["now"] < ran_at["soon"] < ran_at["later"]


async def test_enqueue_at_runs_no_earlier_than_the_time(make_worker: MakeWorker) -> None:
    w = make_worker()
    ran_at: dict[str, float] = {}

    @w.task()
    async def remind(ctx: JobContext, name: str) -> None:
        ran_at[name] = time.time()

    at = datetime.now(UTC) + timedelta(seconds=0.7)
    job = await remind.enqueue_at(at, "future")
    past = await remind.enqueue_at(datetime.now(UTC) - timedelta(hours=1), "past")
    info = await job.info()
    assert info.status is JobStatus.SCHEDULED
    assert info.scheduled_at is not None
    assert abs((info.scheduled_at - at).total_seconds()) < CLOCK_SLACK_S
    # a time already gone means "now"
    assert await past.status() is JobStatus.QUEUED

    await burst(w)

    assert ran_at["future"] >= at.timestamp() - CLOCK_SLACK_S
    assert ran_at["future"] - at.timestamp() < 1.5
    assert ran_at["past"] < at.timestamp()


async def test_delay_and_job_id_options_combine(make_worker: MakeWorker) -> None:
    w = make_worker()
    runs: list[str] = []

    @w.task()
    async def once(ctx: JobContext, label: str) -> None:
        runs.append(label)

    first = await once.options(delay=0.3, job_id="delayed-1").enqueue("a")
    second = await once.options(job_id="delayed-1").enqueue("b")
    assert first.created is True
    assert second.created is False
    assert await second.status() is JobStatus.SCHEDULED
    await burst(w)
    assert runs == ["a"]


async def test_idle_worker_runs_delayed_jobs_when_due(make_worker: MakeWorker) -> None:
    """A worker that went idle learns of new delayed jobs at once and wakes when each is due."""
    w = make_worker()
    ran_at: dict[int, float] = {}
    all_ran = asyncio.Event()

    @w.task()
    async def tick(ctx: JobContext, n: int) -> None:
        ran_at[n] = time.time()
        if len(ran_at) == 3:
            all_ran.set()

    due: dict[int, float] = {}
    async with running(w):
        await asyncio.sleep(0.3)  # nothing to do: the worker is blocked waiting for work
        for n, delay in enumerate((0.7, 1.3, 1.9)):
            due[n] = time.time() + delay
            await tick.enqueue_in(delay, n)
            await asyncio.sleep(0.1)
        with suppress(TimeoutError):
            await asyncio.wait_for(all_ran.wait(), 5)

    assert sorted(ran_at) == [0, 1, 2]
    for n in ran_at:
        late = ran_at[n] - due[n]
        assert -CLOCK_SLACK_S <= late < 0.5, (n, late)


async def test_idle_worker_picks_up_a_new_job_within_a_second(make_worker: MakeWorker) -> None:
    w = make_worker()
    ran_at: list[float] = []

    @w.task()
    async def ping(ctx: JobContext) -> None:
        ran_at.append(time.monotonic())

    async with running(w):
        await asyncio.sleep(0.5)
        enqueued = time.monotonic()
        job = await ping.enqueue()
        await job.result(timeout=5)
    assert len(ran_at) == 1
    assert ran_at[0] - enqueued < 1.0


async def test_idle_worker_does_not_poll_redis_in_a_tight_loop(
    make_worker: MakeWorker, redis_url: str
) -> None:
    w = make_worker(queues={"one": 5, "two": 5})

    async def script_calls(r: redis.asyncio.Redis) -> int:
        stats = await r.info("commandstats")
        return sum(
            int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
        )

    async with redis.asyncio.Redis.from_url(redis_url) as r, running(w):
        await asyncio.sleep(0.3)
        before = await script_calls(r)
        await asyncio.sleep(2.0)
        calls = await script_calls(r) - before
    # each queue wakes at most about once a second to look for expired leases
    assert calls <= 8, calls
