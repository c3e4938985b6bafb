"""Resumable work inside a job: ctx.iterate cursors, ctx.step, ctx.checkpoint fencing.

Interruptions here are in-process: cancelling ``worker.run()`` drains it (running jobs are
cancelled and requeued with their unsaved progress), and a second run picks the job up.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from typing import Any

import pytest
import redis.asyncio as aioredis

from aioworker import Backoff, JobContext, JobStatus, LeaseLost, Worker
from aioworker.keys import QueueKeys
from aioworker.payload import decode_state

MakeWorker = Callable[..., Worker]


@pytest.fixture
async def make_worker(redis_url: str, prefix: str) -> AsyncIterator[MakeWorker]:
    made: list[Worker] = []

    def make(**kwargs: Any) -> Worker:
        kwargs.setdefault("prefix", prefix)
        kwargs.setdefault("lease_timeout", 2)
        kwargs.setdefault("shutdown_grace", 0.5)
        kwargs.setdefault("cancel_grace", 1)
        kwargs.setdefault("backoff", Backoff(base_s=0.05, jitter=False))
        w = Worker(redis_url, **kwargs)
        made.append(w)
        return w

    yield make
    for w in made:
        await w.close()


@pytest.fixture
async def r(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    async with aioredis.Redis.from_url(redis_url) as client:
        yield client


async def burst(worker: Worker) -> dict[str, int]:
    return await asyncio.wait_for(worker.run(burst=True, handle_signals=False), 20)


async def run_until(worker: Worker, reached: asyncio.Event) -> None:
    """Run the worker until ``reached`` is set, then stop it by cancelling ``run()``."""
    run = asyncio.create_task(worker.run(handle_signals=False))
    try:
        await asyncio.wait_for(reached.wait(), 10)
    finally:
        run.cancel()
        with suppress(asyncio.CancelledError):
            await run


async def saved(r: aioredis.Redis, prefix: str, job_id: str) -> tuple[Any, dict[str, Any], Any]:
    """The checkpoint stored in Redis: (user state, completed steps, cursors)."""
    raw = await r.hget(QueueKeys(prefix, "default").state, job_id)
    return decode_state(raw.encode() if isinstance(raw, str) else raw or b"")


def numbers(n: int) -> Callable[[Any], AsyncIterator[int]]:
    """A source of 0..n-1 that resumes after a cursor (the last item handled)."""

    async def source(after: Any) -> AsyncIterator[int]:
        start = 0 if after is None else int(after) + 1
        for i in range(start, n):
            yield i

    return source


async def test_iterate_resumes_after_the_last_saved_cursor(
    make_worker: MakeWorker, r: aioredis.Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aioworker.job")
    w = make_worker()
    started: list[int] = []
    finished: list[int] = []
    reached = asyncio.Event()

    @w.task(name="walk")
    async def walk(ctx: JobContext, n: int) -> dict[str, Any]:
        resumed_from = ctx.cursor()
        async for i in ctx.iterate(numbers(n), key=lambda i: i, every=5, every_s=60):
            started.append(i)
            if i == 13 and not reached.is_set():
                reached.set()
                await asyncio.sleep(60)  # interrupted here, mid-item
            await asyncio.sleep(0.001)
            finished.append(i)
        return {
            "resumed_from": resumed_from,
            "last": ctx.cursor(),
            "attempt": ctx.attempt,
            "items": ctx.items_done,
        }

    job = await walk.enqueue(40)
    await run_until(w, reached)

    # items 0..12 were handled; 13 was interrupted.  Periodic saves stored cursor 9; the
    # requeue stored the unsaved progress.
    assert finished == list(range(13))
    assert await job.status() is JobStatus.QUEUED
    _, _, cursors = await saved(r, prefix, job.id)
    assert cursors == {"default": 12}
    lines = [rec.getMessage() for rec in caplog.records if job.id in rec.getMessage()]
    assert len(lines) == 1, lines
    assert "interrupted" in lines[0]
    assert "cursor default=12" in lines[0], lines[0]

    stats = await burst(w)

    assert stats["complete"] == 1
    assert await job.result(timeout=5) == {
        "resumed_from": 12,
        "last": 39,
        "attempt": 1,  # the interrupted run did not use an attempt
        "items": 27,
    }
    assert sorted(finished) == list(range(40))  # every item exactly once
    counts = Counter(started)
    assert {i for i, c in counts.items() if c > 1} == {13}  # only the interrupted item again
    assert set(counts) == set(range(40))


async def test_iterate_checkpoints_every_n_items(
    make_worker: MakeWorker, r: aioredis.Redis, prefix: str
) -> None:
    w = make_worker()
    seen: list[tuple[int, Any, int]] = []

    @w.task(name="walk")
    async def walk(ctx: JobContext, n: int) -> dict[str, Any]:
        async for i in ctx.iterate(numbers(n), key=lambda i: i, every=5, every_s=60):
            _, _, cursors = await saved(r, prefix, ctx.job_id)
            seen.append((i, cursors.get("default"), ctx.checkpoints))
        return {"checkpoints": ctx.checkpoints, "last": ctx.cursor()}

    job = await walk.enqueue(23)
    await burst(w)

    # four saves in the loop (after items 4, 9, 14 and 19) and one at the end
    assert await job.result(timeout=5) == {"checkpoints": 5, "last": 22}
    expected = [(i, None if i < 5 else 5 * (i // 5) - 1, i // 5) for i in range(23)]
    assert seen == expected


async def test_iterate_checkpoints_after_every_s_seconds(make_worker: MakeWorker) -> None:
    w = make_worker()

    @w.task(name="slow_walk")
    async def slow_walk(ctx: JobContext) -> int:
        async for _ in ctx.iterate(numbers(10), key=lambda i: i, every=1000, every_s=0.25):
            await asyncio.sleep(0.1)
        return ctx.checkpoints

    job = await slow_walk.enqueue()
    await burst(w)
    checkpoints = await job.result(timeout=5)
    # about one save per 0.25 s of a 1 s loop, plus the final one; never one per item
    assert 3 <= checkpoints <= 7, checkpoints


async def test_iterate_rejects_bad_settings(make_worker: MakeWorker) -> None:
    w = make_worker()

    @w.task(name="bad", retries=0)
    async def bad(ctx: JobContext, every: int, every_s: float) -> None:
        async for _ in ctx.iterate(numbers(3), key=lambda i: i, every=every, every_s=every_s):
            pass

    jobs = [await bad.enqueue(0, 1.0), await bad.enqueue(5, 0.0)]
    await burst(w)
    for job in jobs:
        info = await job.info()
        assert info.status is JobStatus.DEAD
        assert info.error is not None
        assert info.error["type"] == "ValueError"


async def test_step_is_skipped_on_a_retry_and_returns_the_stored_value(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()
    calls: Counter[str] = Counter()
    resumptions: list[bool] = []

    async def reserve(order: str) -> str:
        calls["reserve"] += 1
        return f"{order}-{uuid.uuid4().hex}"  # differs on every call

    async def charge(reservation: str) -> dict[str, str]:
        calls["charge"] += 1
        if calls["charge"] == 1:
            raise ConnectionError("payment API down")
        return {"charged": reservation}

    @w.task(name="order", retries=2)
    async def order(ctx: JobContext, order_id: str) -> dict[str, Any]:
        resumptions.append(ctx.is_resumption)
        reservation = await ctx.step("reserve", reserve, order_id)
        charged = await ctx.step("charge", charge, reservation)
        return {"reservation": reservation, "charge": charged, "attempt": ctx.attempt}

    job = await order.enqueue("o1")
    stats = await burst(w)

    result = await job.result(timeout=5)
    assert stats["retry"] == 1
    assert calls == {"reserve": 1, "charge": 2}
    assert result["attempt"] == 2
    assert result["reservation"].startswith("o1-")
    assert result["charge"] == {"charged": result["reservation"]}
    assert resumptions == [False, True]


async def test_step_is_skipped_after_an_interruption(
    make_worker: MakeWorker, r: aioredis.Redis, prefix: str
) -> None:
    w = make_worker()
    calls: Counter[str] = Counter()
    reached = asyncio.Event()

    async def first() -> list[int]:
        calls["first"] += 1
        return [calls["first"], 7]

    async def second() -> str:
        calls["second"] += 1
        if calls["second"] == 1:
            reached.set()
            await asyncio.sleep(60)  # interrupted here
        return "two"

    @w.task(name="two_steps")
    async def two_steps(ctx: JobContext) -> list[Any]:
        done_before = ctx.step_done("first")
        a = await ctx.step("first", first)
        b = await ctx.step("second", second)
        return [done_before, a, b]

    job = await two_steps.enqueue()
    await run_until(w, reached)
    _, steps, _ = await saved(r, prefix, job.id)
    assert steps == {"first": [1, 7]}

    await burst(w)

    assert await job.result(timeout=5) == [True, [1, 7], "two"]
    assert calls == {"first": 1, "second": 2}


async def test_checkpoint_of_a_non_json_value_raises_and_keeps_the_state(
    make_worker: MakeWorker, r: aioredis.Redis, prefix: str
) -> None:
    w = make_worker()

    @w.task(name="saver")
    async def saver(ctx: JobContext) -> dict[str, Any]:
        await ctx.checkpoint({"n": 1})
        errors = []
        for bad in ({"when": object()}, {1, 2}, [b"\xff"]):
            try:
                await ctx.checkpoint(bad)
            except TypeError as exc:
                errors.append(type(exc).__name__)
        stored, _, _ = await saved(r, prefix, ctx.job_id)
        return {
            "errors": len(errors),
            "state": ctx.state,
            "stored": stored,
            "checkpoints": ctx.checkpoints,
        }

    job = await saver.enqueue()
    await burst(w)
    assert await job.result(timeout=5) == {
        "errors": 3,
        "state": {"n": 1},
        "stored": {"n": 1},
        "checkpoints": 1,
    }


async def test_a_step_with_a_non_json_result_does_not_break_later_checkpoints(
    make_worker: MakeWorker, r: aioredis.Redis, prefix: str
) -> None:
    w = make_worker()

    async def unencodable() -> object:
        return object()

    @w.task(name="stepper")
    async def stepper(ctx: JobContext) -> dict[str, Any]:
        try:
            await ctx.step("bad", unencodable)
        except TypeError:
            raised = True
        else:
            raised = False
        await ctx.checkpoint("after")
        stored, steps, _ = await saved(r, prefix, ctx.job_id)
        return {"raised": raised, "done": ctx.step_done("bad"), "stored": stored, "steps": steps}

    job = await stepper.enqueue()
    await burst(w)
    assert await job.result(timeout=5) == {
        "raised": True,
        "done": False,
        "stored": "after",
        "steps": {},
    }


async def test_is_resumption_is_false_in_a_first_run_that_checkpointed(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()

    @w.task(name="fresh")
    async def fresh(ctx: JobContext) -> list[bool]:
        before = ctx.is_resumption
        await ctx.checkpoint({"at": 1})
        async for _ in ctx.iterate(numbers(3), key=lambda i: i):
            pass
        return [before, ctx.is_resumption]

    job = await fresh.enqueue()
    await burst(w)
    assert await job.result(timeout=5) == [False, False]


async def test_saving_after_the_lease_was_lost_raises_lease_lost(
    make_worker: MakeWorker, r: aioredis.Redis, prefix: str
) -> None:
    w = make_worker()
    leases = QueueKeys(prefix, "default").leases
    calls: Counter[str] = Counter()

    async def side_effect() -> str:
        calls["step"] += 1
        return "done"

    @w.task(name="fenced")
    async def fenced(ctx: JobContext) -> dict[str, Any]:
        await ctx.checkpoint({"mine": True})
        token = await r.hget(leases, ctx.job_id)
        assert token is not None
        await r.hset(leases, ctx.job_id, "another-worker:1")  # another worker took the job
        raised = []
        try:
            await ctx.checkpoint({"mine": False})
        except LeaseLost:
            raised.append("checkpoint")
        try:
            await ctx.step("s", side_effect)
        except LeaseLost:
            raised.append("step")
        try:
            async for _ in ctx.iterate(numbers(3), key=lambda i: i, every=1):
                pass
        except LeaseLost:
            raised.append("iterate")
        stored, steps, cursors = await saved(r, prefix, ctx.job_id)
        await r.hset(leases, ctx.job_id, token)  # hand the job back to finish the test
        return {
            "raised": raised,
            "stored": [stored, steps, cursors],
            "checkpoints": ctx.checkpoints,
        }

    job = await fenced.enqueue()
    stats = await burst(w)
    assert stats["complete"] == 1
    assert await job.result(timeout=5) == {
        "raised": ["checkpoint", "step", "iterate"],
        "stored": [{"mine": True}, {}, {}],  # nothing was overwritten
        "checkpoints": 1,
    }


async def test_lease_lost_in_a_job_discards_its_outcome(
    make_worker: MakeWorker, r: aioredis.Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aioworker.job")
    w = make_worker(lease_timeout=30)  # the other worker holds the job for the whole test
    leases = QueueKeys(prefix, "default").leases
    done = asyncio.Event()

    @w.task(name="fenced", retries=0)
    async def fenced(ctx: JobContext) -> None:
        await ctx.checkpoint(1)
        await r.hset(leases, ctx.job_id, "another-worker:1")
        try:
            await ctx.checkpoint(2)
        finally:
            done.set()

    job = await fenced.enqueue()
    await run_until(w, done)  # the drain waits for the outcome being written
    assert await job.status() is JobStatus.RUNNING  # not dead-lettered: another worker owns it
    lost = [m.getMessage() for m in caplog.records if "lease lost before" in m.getMessage()]
    assert len(lost) == 1, lost
    assert job.id in lost[0]
    stored, _, _ = await saved(r, prefix, job.id)
    assert stored == 1
