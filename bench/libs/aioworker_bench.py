"""aioworker under the shared benchmark driver.

The producer uses ``Worker.enqueue_many`` (script calls of up to 2,000 jobs); the
worker runs in burst mode with the queue's concurrency from ``queues=``.
It runs in the project's own interpreter.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import _harness

try:
    import aioworker
except ImportError:  # run from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import aioworker

from aioworker import JobContext, Worker


def build(opts: _harness.Options) -> _harness.Library:
    worker = Worker(redis_url=opts.redis_url, queues={"default": opts.concurrency}, prefix="bench")

    @worker.task(name="noop")
    async def noop(ctx: JobContext) -> None:
        _harness.job_done()

    @worker.task(name="sleepy")
    async def sleepy(ctx: JobContext, seconds: float) -> None:
        _harness.job_started()
        await asyncio.sleep(seconds)
        _harness.job_done()

    @worker.task(name="stamp")
    async def stamp(ctx: JobContext, enqueued_at: float) -> None:
        _harness.job_stamp(enqueued_at)

    async def enqueue() -> None:
        if opts.scenario == "pickup":
            try:
                await _harness.paced(opts, stamp.enqueue)
            finally:
                await worker.close()
            return
        if opts.scenario == "noop":
            specs = [noop.call() for _ in range(opts.jobs)]
        else:
            specs = [sleepy.call(opts.sleep_s) for _ in range(opts.jobs)]
        try:
            await worker.enqueue_many(specs)
        finally:
            await worker.close()

    async def work(done: _harness.Completions) -> None:
        if opts.scenario == "pickup":
            # an idle worker must not leave when the queue is empty: run it as
            # deployed and stop it the way a deployment does, with SIGTERM
            async def stop_when_done() -> None:
                await done.event.wait()
                os.kill(os.getpid(), signal.SIGTERM)

            stopper = asyncio.create_task(stop_when_done())
            try:
                await worker.run(handle_signals=True)
            finally:
                stopper.cancel()
                await worker.close()
            return
        try:
            await worker.run(burst=True, handle_signals=False)
        finally:
            await worker.close()

    return _harness.Library(
        name="aioworker",
        version=aioworker.__version__,
        settings={
            "queues": {"default": opts.concurrency},
            "burst": opts.scenario != "pickup",
            "other": "defaults (retries=3, lease_timeout=10 s, result_ttl=1 day)",
            "enqueue": "Worker.enqueue_many (one script call per 2,000 jobs)",
            "loop": "uvloop",
        },
        enqueue=enqueue,
        work=work,
    )


if __name__ == "__main__":
    _harness.main(build)
