"""An idle worker's wait: a new job starts without polling, and stopping wakes the wait
without leasing anything (see ``Runtime._fetch_loop`` and ``lua/fetch.lua``)."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio

from aioworker import JobContext
from tests.worker_kit import MakeWorker


async def test_idle_worker_runs_each_job_enqueued_one_at_a_time(make_worker: MakeWorker) -> None:
    w = make_worker(queues={"default": 10})
    ran: list[int] = []
    seen = asyncio.Event()

    @w.task(name="note")
    async def note(ctx: JobContext, i: int) -> None:
        ran.append(i)
        seen.set()

    run = asyncio.create_task(w.run(handle_signals=False))
    try:
        await asyncio.sleep(0.3)  # idle: blocked in its wait
        for i in range(20):
            seen.clear()
            await note.enqueue(i)
            # each one is picked up by the waiting fetch (a fallback would take 1 s)
            await asyncio.wait_for(seen.wait(), 0.9)
        assert ran == list(range(20))
    finally:
        w.stop()
        await asyncio.wait_for(run, 10)


async def test_stopping_an_idle_worker_leases_nothing_and_leaves_no_key(
    make_worker: MakeWorker, redis_url: str, prefix: str
) -> None:
    w = make_worker(queues={"default": 10})
    ran: list[str] = []

    @w.task(name="note")
    async def note(ctx: JobContext) -> None:
        ran.append(ctx.job_id)

    r = redis.asyncio.Redis.from_url(redis_url)
    run = asyncio.create_task(w.run(handle_signals=False))
    try:
        await asyncio.sleep(0.3)  # idle: blocked in its wait
        # a job becomes ready without a wake token (as when another worker took it): the
        # waiting fetch would lease it when its wait ends, unless the stop wakes it first
        now_ms = int(time.time() * 1000)
        await r.hset(f"{prefix}:{{default}}:jobs", "j1", f'{now_ms}|{{"t":"note","a":[],"k":{{}}}}')
        await r.rpush(f"{prefix}:{{default}}:ready", "j1")
        w.stop()
        await asyncio.wait_for(run, 10)

        assert ran == []
        assert await r.lrange(f"{prefix}:{{default}}:ready", 0, -1) == [b"j1"]
        assert await r.hlen(f"{prefix}:{{default}}:attempts") == 0
        assert [key async for key in r.scan_iter(match=f"{prefix}:*halt*")] == []
    finally:
        await r.aclose()
