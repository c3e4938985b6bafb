"""Stopping a full worker: fetch loops waiting for a free slot end at once, they do not
hold the shutdown for the 2 s a fetch script in flight may take."""

from __future__ import annotations

import asyncio

from aioworker import JobContext
from aioworker.extensions import RunContext
from aioworker.runtime import Runtime
from tests.worker_kit import MakeWorker


async def test_stop_on_a_full_worker_does_not_wait_for_the_slot_waiters(
    make_worker: MakeWorker,
) -> None:
    worker = make_worker(queues={"default": 2, "other": 2}, shutdown_grace=10)
    runtimes: list[Runtime] = []
    seen_at_stop: list[tuple[bool, int]] = []

    @worker.task(name="long", queue="default")
    async def long(ctx: JobContext) -> str:
        await ctx.shutting_down.wait()
        rt = runtimes[0]
        await asyncio.sleep(0.2)  # the stop has had time to deal with the fetch loops
        seen_at_stop.append((all(t.done() for t in rt._fetchers.values()), len(rt.running)))
        return "finished in the grace period"

    @worker.service
    async def grab(rt: RunContext) -> None:
        assert isinstance(rt, Runtime)  # the test looks inside the run it serves
        runtimes.append(rt)
        await asyncio.Event().wait()

    await worker.enqueue_many([long.call() for _ in range(3)])  # 2 run, 1 waits for a slot
    run = asyncio.create_task(worker.run(handle_signals=False, concurrency=2))
    try:
        for _ in range(400):
            if runtimes and len(runtimes[0].running) == 2:
                break
            await asyncio.sleep(0.025)
        rt = runtimes[0]
        assert len(rt.running) == 2 and rt.capacity.free("default") == 0
        worker.stop()  # as SIGTERM does
        stats = await asyncio.wait_for(run, 20)
    finally:
        if not run.done():
            run.cancel()
    # both jobs saw every fetch loop already ended while they still ran, and no loop was
    # left for the stop's wait on a fetch in flight to cut off
    assert seen_at_stop == [(True, 2), (True, 2)] or seen_at_stop == [(True, 2), (True, 1)]
    assert rt.fetchers_cut_off == 0
    assert stats["complete"] == 2
    assert await worker.client.counts("default") == {
        "ready": 1,
        "scheduled": 0,
        "active": 0,
        "dead": 0,
    }
