"""Concurrency: per-queue limits, the process-wide cap, strict priority and weights."""

from __future__ import annotations

import asyncio
from collections import Counter

from aioworker import JobContext
from tests.worker_kit import MakeWorker, burst, running


class Gauge:
    """Counts jobs running at once, overall and per queue, and keeps the most seen."""

    def __init__(self) -> None:
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.total_now = 0
        self.total_peak = 0
        self.started: list[str] = []

    def enter(self, queue: str) -> None:
        self.started.append(queue)
        self.now[queue] += 1
        self.total_now += 1
        self.peak[queue] = max(self.peak[queue], self.now[queue])
        self.total_peak = max(self.total_peak, self.total_now)

    def leave(self, queue: str) -> None:
        self.now[queue] -= 1
        self.total_now -= 1


async def test_queue_limit_is_never_exceeded(make_worker: MakeWorker) -> None:
    w = make_worker(queues={"limited": 2, "wide": 50})
    gauge = Gauge()

    @w.task(queue="limited")
    async def slow(ctx: JobContext) -> None:
        gauge.enter(ctx.queue)
        try:
            await asyncio.sleep(0.05)
        finally:
            gauge.leave(ctx.queue)

    await w.enqueue_many([slow.call() for _ in range(10)])
    await w.enqueue_many([slow.options(queue="wide").call() for _ in range(10)])
    stats = await burst(w)

    assert stats["complete"] == 20
    assert gauge.peak["limited"] == 2
    assert gauge.peak["wide"] == 10
    assert gauge.started.count("limited") == 10


async def test_saturated_slow_queue_does_not_delay_a_fast_queue(make_worker: MakeWorker) -> None:
    w = make_worker(queues={"slow": 2, "fast": 5})
    release = asyncio.Event()
    gauge = Gauge()
    slow_done: list[int] = []

    @w.task(queue="slow")
    async def report(ctx: JobContext, n: int) -> None:
        gauge.enter("slow")
        try:
            await release.wait()
        finally:
            gauge.leave("slow")
        slow_done.append(n)

    @w.task(queue="fast")
    async def ping(ctx: JobContext, n: int) -> int:
        await asyncio.sleep(0.01)
        return n

    await w.enqueue_many([report.call(n) for n in range(6)])
    async with running(w):
        # the slow queue is full before the fast jobs arrive
        for _ in range(100):
            if gauge.now["slow"] == 2:
                break
            await asyncio.sleep(0.02)
        assert gauge.now["slow"] == 2
        fast = await w.enqueue_many([ping.call(n) for n in range(30)])
        results = [await h.result(timeout=5) for h in fast]
        assert results == list(range(30))
        # every fast job finished while the slow queue was still stuck at its limit
        assert gauge.now["slow"] == 2
        assert slow_done == []
        assert (await w.client.counts("slow"))["ready"] == 4
        release.set()
        for _ in range(200):
            if len(slow_done) == 6:
                break
            await asyncio.sleep(0.02)
    assert sorted(slow_done) == list(range(6))
    assert gauge.peak["slow"] == 2


async def test_process_wide_concurrency_caps_all_queues(make_worker: MakeWorker) -> None:
    w = make_worker(queues={"a": 10, "b": 10}, concurrency=3)
    gauge = Gauge()

    @w.task(queue="a")
    async def job(ctx: JobContext) -> None:
        gauge.enter(ctx.queue)
        try:
            await asyncio.sleep(0.03)
        finally:
            gauge.leave(ctx.queue)

    await w.enqueue_many([job.call() for _ in range(12)])
    await w.enqueue_many([job.options(queue="b").call() for _ in range(12)])
    stats = await burst(w)

    assert stats["complete"] == 24
    assert gauge.total_peak == 3

    # the run's own cap overrides the constructor's
    gauge2 = Gauge()
    w2 = make_worker(queues={"a": 10, "b": 10}, concurrency=3)

    @w2.task(queue="a")
    async def job2(ctx: JobContext) -> None:
        gauge2.enter(ctx.queue)
        try:
            await asyncio.sleep(0.03)
        finally:
            gauge2.leave(ctx.queue)

    await w2.enqueue_many([job2.call() for _ in range(8)])
    await w2.enqueue_many([job2.options(queue="b").call() for _ in range(8)])
    await burst(w2, concurrency=5)
    assert gauge2.total_peak == 5


async def test_strict_priority_runs_every_critical_job_before_default(
    make_worker: MakeWorker,
) -> None:
    w = make_worker(queues={"critical": 10, "default": 10})
    gauge = Gauge()

    @w.task()
    async def work(ctx: JobContext) -> None:
        gauge.enter(ctx.queue)
        await asyncio.sleep(0.005)
        gauge.leave(ctx.queue)

    # default's jobs were enqueued first: order of arrival must not matter
    await w.enqueue_many([work.call() for _ in range(8)])
    await w.enqueue_many([work.options(queue="critical").call() for _ in range(8)])
    stats = await burst(w, queues=["critical", "default"], concurrency=1)

    assert stats["complete"] == 16
    assert gauge.started == ["critical"] * 8 + ["default"] * 8
    assert gauge.total_peak == 1


async def test_weights_share_slots_about_three_to_one(make_worker: MakeWorker) -> None:
    w = make_worker(queues={"high": 10, "low": 10})
    gauge = Gauge()

    @w.task()
    async def work(ctx: JobContext) -> None:
        gauge.enter(ctx.queue)
        await asyncio.sleep(0.003)
        gauge.leave(ctx.queue)

    await w.enqueue_many([work.call() for _ in range(30)])
    await w.enqueue_many([work.options(queue="high").call() for _ in range(30)])
    await w.enqueue_many([work.options(queue="low").call() for _ in range(30)])
    stats = await burst(w, queues=["high:3", "low:1"], concurrency=1)

    assert stats["complete"] == 60
    first = Counter(gauge.started[:24])
    # exactly 18:6 by the weights; the band allows for start-up ordering
    assert 14 <= first["high"] <= 21, gauge.started[:24]
    assert first["high"] + first["low"] == 24
    # the lower-weight queue is not starved while the other still has work
    assert first["low"] >= 3
    assert Counter(gauge.started) == {"high": 30, "low": 30}
    assert (await w.client.counts("default"))["ready"] == 30  # not served by this run
