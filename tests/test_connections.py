"""Many jobs talking to Redis at once wait for a pooled connection instead of failing."""

from __future__ import annotations

import asyncio

from aioworker import JobContext, ResultTimeout, Worker


async def test_a_thousand_jobs_checkpointing_at_once_all_succeed(
    redis_url: str, prefix: str
) -> None:
    worker = Worker(redis_url, prefix=prefix, queues={"default": 1000})
    saved: list[int] = []

    @worker.task(name="checkpointing")
    async def checkpointing(ctx: JobContext) -> None:
        for step in range(3):
            await ctx.checkpoint(step)
            await asyncio.sleep(0.005)
        saved.append(ctx.state)

    try:
        await worker.enqueue_many([checkpointing.call() for _ in range(2000)])
        stats = await worker.run(burst=True, handle_signals=False)
        assert stats["complete"] == 2000
        assert stats["retry"] == 0 and stats["dead"] == 0
        assert saved == [2] * 2000
    finally:
        await worker.close()


async def test_hundreds_of_jobs_blocked_on_results_do_not_exhaust_connections(
    redis_url: str, prefix: str
) -> None:
    worker = Worker(redis_url, prefix=prefix, queues={"default": 400})
    timed_out: list[str] = []

    @worker.task(name="waiting", queue="default")
    async def waiting(ctx: JobContext, other: str) -> None:
        try:  # each wait blocks one Redis connection for its whole duration
            await ctx.client.job(other, "unserved").result(timeout=0.5)
        except ResultTimeout:
            timed_out.append(ctx.job_id)

    @worker.task(name="never", queue="unserved")
    async def never(ctx: JobContext) -> None:
        raise AssertionError("the unserved queue must not run")

    try:
        other = await never.enqueue()
        await worker.enqueue_many([waiting.call(other.id) for _ in range(400)])
        stats = await worker.run(["default"], burst=True, handle_signals=False)
        assert stats["complete"] == 400
        assert stats["retry"] == 0
        assert len(timed_out) == 400
    finally:
        await worker.close()


async def test_the_pool_size_can_be_set(redis_url: str, prefix: str) -> None:
    worker = Worker(redis_url, prefix=prefix, redis_options={"max_connections": 3})
    calls = await asyncio.gather(*(worker.client.counts("default") for _ in range(20)))
    assert all(c["ready"] == 0 for c in calls)
    client = await worker.client.broker.connect()
    assert client.connection_pool.max_connections == 3  # type: ignore[union-attr]
    await worker.close()
