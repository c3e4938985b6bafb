"""saq under the shared benchmark driver.

saq has no bulk enqueue either; its own ``Queue.map`` gathers ``enqueue``
calls, which the queue throttles with ``max_concurrent_ops``. The producer does
the same without waiting for results. The worker runs ``concurrency`` dequeue
loops, each holding a blocking BLMOVE.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from typing import Any

import _harness
from saq import Queue, Worker


async def noop(ctx: dict[str, Any]) -> None:
    _harness.job_done()


async def sleepy(ctx: dict[str, Any], *, seconds: float) -> None:
    _harness.job_started()
    await asyncio.sleep(seconds)
    _harness.job_done()


async def stamp(ctx: dict[str, Any], *, enqueued_at: float) -> None:
    _harness.job_stamp(enqueued_at)


def build(opts: _harness.Options) -> _harness.Library:
    async def enqueue() -> None:
        queue = Queue.from_url(opts.redis_url)
        await queue.connect()
        try:
            if opts.scenario == "pickup":
                await _harness.paced(opts, lambda at: queue.enqueue("stamp", enqueued_at=at))
            elif opts.scenario == "noop":
                await asyncio.gather(*(queue.enqueue("noop") for _ in range(opts.jobs)))
            else:
                await asyncio.gather(
                    *(queue.enqueue("sleepy", seconds=opts.sleep_s) for _ in range(opts.jobs))
                )
        finally:
            await queue.disconnect()

    async def work(done: _harness.Completions) -> None:
        queue = Queue.from_url(opts.redis_url)
        await queue.connect()
        worker = Worker(queue, functions=[noop, sleepy, stamp], concurrency=opts.concurrency)
        runner = asyncio.create_task(worker.start())
        try:
            await done.event.wait()
            await worker.stop()
            await runner
        finally:
            runner.cancel()
            await queue.disconnect()

    return _harness.Library(
        name="saq",
        version=version("saq"),
        settings={
            "concurrency": opts.concurrency,
            "other": "defaults (dequeue_timeout=0, job timeout=10 s, retries=1, ttl=600 s)",
            "enqueue": "asyncio.gather of Queue.enqueue (max_concurrent_ops=20, the default)",
            "loop": "uvloop",
        },
        enqueue=enqueue,
        work=work,
    )


if __name__ == "__main__":
    _harness.main(build)
