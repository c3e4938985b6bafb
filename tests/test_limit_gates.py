"""Limiters on tasks: over-limit jobs are deferred (no attempt used, no slot held), keyed
limits per tenant, max wait, and global concurrency caps per task and per queue."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from aioworker import (
    Backoff,
    Bucket,
    Concurrent,
    ConfigError,
    JobContext,
    JobDead,
    JobStatus,
    Window,
    Worker,
)
from aioworker.limits import Limiter
from tests.limitkit import limit_url

__all__ = ("limit_url",)

MakeWorker = Callable[..., Worker]


@pytest.fixture
async def make_worker(limit_url: str, prefix: str) -> AsyncIterator[MakeWorker]:
    made: list[Worker] = []

    def make(**kwargs: Any) -> Worker:
        kwargs.setdefault("prefix", prefix)
        kwargs.setdefault("lease_timeout", 2)
        kwargs.setdefault("backoff", Backoff(base_s=0.05, jitter=False))
        w = Worker(limit_url, **kwargs)
        made.append(w)
        return w

    yield make
    for w in made:
        await w.close()


async def burst(*workers: Worker, **kwargs: Any) -> list[dict[str, int]]:
    """Run the workers until their queues are drained (bounded, so a hang fails fast)."""
    runs = [w.run(burst=True, handle_signals=False, **kwargs) for w in workers]
    return list(await asyncio.wait_for(asyncio.gather(*runs), 30))


class Gauge:
    """Jobs running at once, by label, with the most seen."""

    def __init__(self) -> None:
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()

    def enter(self, label: str) -> None:
        self.now[label] += 1
        self.peak[label] = max(self.peak[label], self.now[label])

    def leave(self, label: str) -> None:
        self.now[label] -= 1


async def test_jobs_over_the_rate_are_deferred_and_never_use_an_attempt(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()
    runs: Counter[int] = Counter()

    @w.task(retries=0, rate_limit=Window("w", 5, per=0.5))
    async def call_api(ctx: JobContext, n: int) -> int:
        runs[n] += 1
        return ctx.attempt

    handles = await w.enqueue_many([call_api.call(n) for n in range(20)])
    (stats,) = await burst(w)

    # a deferral that used an attempt would have dead-lettered these jobs (retries=0)
    assert [await h.result(timeout=1) for h in handles] == [1] * 20
    assert runs == dict.fromkeys(range(20), 1)
    assert stats["complete"] == 20
    assert stats["defer"] > 0
    assert stats["dead"] == stats["retry"] == 0


async def test_deferred_jobs_do_not_starve_other_queues(make_worker: MakeWorker) -> None:
    w = make_worker(queues={"limited": 10, "free": 10})
    done: list[str] = []

    @w.task(queue="limited", rate_limit=Window("slow-api", 2, per=1))
    async def limited(ctx: JobContext) -> None:
        done.append("limited")

    @w.task(queue="free")
    async def free(ctx: JobContext) -> None:
        await asyncio.sleep(0.005)
        done.append("free")

    await w.enqueue_many([limited.call() for _ in range(10)])
    await w.enqueue_many([free.call() for _ in range(200)])
    # strict priority to the limited queue and a process-wide cap of 10 slots: a
    # deferred job holding a slot would leave the free queue without any
    await burst(w, queues=["limited", "free"], concurrency=10)

    assert Counter(done) == {"limited": 10, "free": 200}
    last_free = max(i for i, kind in enumerate(done) if kind == "free")
    assert done[last_free + 1 :] == ["limited"] * (len(done) - last_free - 1)
    assert len(done) - last_free - 1 >= 5, "the free jobs waited for the rate-limited ones"


async def test_keyed_limits_per_tenant_and_max_wait_fail_the_attempt(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()
    ran: list[str] = []

    @w.task(
        retries=0,
        rate_limit=Bucket("erp", 2, per=3600),
        rate_key=lambda tenant, n: tenant,
        rate_max_wait=0.5,
    )
    async def sync_erp(ctx: JobContext, tenant: str, n: int) -> int:
        ran.append(tenant)
        return ctx.attempt

    a_jobs = await w.enqueue_many([sync_erp.call("a", n) for n in range(4)])
    b_jobs = await w.enqueue_many([sync_erp.call("b", n) for n in range(2)])
    await burst(w)

    assert Counter(ran) == {"a": 2, "b": 2}
    for h in b_jobs:
        assert await h.result(timeout=1) == 1
    statuses = Counter([await h.status() for h in a_jobs])
    assert statuses == {JobStatus.COMPLETE: 2, JobStatus.DEAD: 2}
    for h in a_jobs:
        if await h.status() is JobStatus.DEAD:
            with pytest.raises(JobDead) as info:
                await h.result(timeout=1)
            assert info.value.error["type"] == "RateLimited"
            assert "'erp:a'" in info.value.error["message"]
            assert (await h.info()).attempts == 1


async def test_a_key_function_that_fails_dead_letters_the_job_and_the_worker_goes_on(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()
    regions = {"eu": "eu-1"}

    @w.task(retries=0, rate_limit=Window("geo", 100, per=1), rate_key=lambda r: regions[r])
    async def geocode(ctx: JobContext, r: str) -> str:
        return r

    bad, good = await w.enqueue_many([geocode.call("mars"), geocode.call("eu")])
    await burst(w)

    assert await good.result(timeout=1) == "eu"
    with pytest.raises(JobDead) as info:
        await bad.result(timeout=1)
    assert info.value.error["type"] == "ValueError"
    assert "rate_key of task" in info.value.error["message"]
    assert "KeyError" in info.value.error["message"]


async def test_global_concurrency_caps_a_task_and_a_queue_across_workers(
    make_worker: MakeWorker, prefix: str
) -> None:
    gauge = Gauge()
    workers = [
        make_worker(queues={"q": 20, "reports": 20}, global_concurrency={"reports": 2})
        for _ in range(2)
    ]
    for w in workers:

        @w.task(name="capped", queue="q", global_concurrency=3)
        async def capped(ctx: JobContext) -> None:
            gauge.enter("capped")
            await asyncio.sleep(0.1)
            gauge.leave("capped")

        @w.task(name="report", queue="reports")
        async def report(ctx: JobContext) -> None:
            gauge.enter("reports")
            await asyncio.sleep(0.1)
            gauge.leave("reports")

    w0 = workers[0]
    await w0.enqueue_many([w0.tasks["capped"].call() for _ in range(12)])
    await w0.enqueue_many([w0.tasks["report"].call() for _ in range(8)])
    stats = await burst(*workers)

    assert sum(s["complete"] for s in stats) == 20
    assert gauge.peak == {"capped": 3, "reports": 2}
    # every hold was given back
    for name in ("task:capped", "queue:reports"):
        holders = Concurrent(name, 1, on=w0).keys.holders
        broker = w0.client.broker
        client = await broker.connect()
        assert await client.zcard(holders) == 0


async def test_a_concurrent_rate_limit_with_a_key_caps_each_tenant(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()
    gauge = Gauge()

    @w.task(rate_limit=Concurrent("tenant", 1), rate_key=lambda tenant: tenant)
    async def export(ctx: JobContext, tenant: str) -> None:
        gauge.enter(tenant)
        gauge.enter("all")
        await asyncio.sleep(0.05)
        gauge.leave("all")
        gauge.leave(tenant)

    await w.enqueue_many([export.call(t) for t in "ab" for _ in range(4)])
    (stats,) = await burst(w)

    assert stats["complete"] == 8
    assert gauge.peak == {"a": 1, "b": 1, "all": 2}


@pytest.mark.parametrize(
    "options",
    [
        {"rate_key": lambda x: x},
        {"rate_max_wait": 5},
        {"global_concurrency": 0},
        {"rate_limit": "10/s"},
    ],
)
def test_limit_options_that_do_not_fit_are_config_errors(options: dict[str, Any]) -> None:
    w = Worker("redis://127.0.0.1:1/0")

    async def fn(ctx: JobContext) -> None:
        pass

    with pytest.raises(ConfigError):
        w.task(**options)(fn)


def test_queue_caps_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="global_concurrency"):
        Worker("redis://127.0.0.1:1/0", global_concurrency={"q": 0})


def test_an_unbound_limiter_on_a_task_is_bound_to_its_worker() -> None:
    w = Worker("redis://127.0.0.1:1/0", prefix="app")
    limiter: Limiter = Window("w", 1, per=1)

    @w.task(rate_limit=limiter)
    async def fn(ctx: JobContext) -> None:
        pass

    (gate,) = fn.gates
    assert not limiter.bound
    assert gate.limiter.bound  # type: ignore[attr-defined]
    assert gate.limiter.keys.log == "app:{limit:w}:log"  # type: ignore[attr-defined]


async def test_a_limiter_out_of_reach_defers_jobs_without_using_an_attempt(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()
    away = Window("w", 5, per=1, on="redis://127.0.0.1:1/0")

    @w.task(retries=0, rate_limit=away)
    async def call_api(ctx: JobContext) -> None:
        raise AssertionError("ran without its limiter")

    job = await call_api.enqueue()
    run = asyncio.create_task(w.run(handle_signals=False))
    try:
        for _ in range(100):
            if await job.status() is JobStatus.SCHEDULED:
                break
            await asyncio.sleep(0.02)
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        await away.close()
    info = await job.info()
    assert info.status is JobStatus.SCHEDULED
    assert info.attempts == 0
