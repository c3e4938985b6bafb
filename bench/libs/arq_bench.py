"""arq under the shared benchmark driver.

arq has no bulk enqueue: each ``enqueue_job`` is its own WATCH/MULTI
transaction, so the producer runs many of them at once with ``asyncio.gather``.
The worker runs in burst mode with ``max_jobs`` as its concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib.metadata import version
from typing import Any

import _harness
from arq import Worker, create_pool
from arq.connections import RedisSettings

ENQUEUE_IN_FLIGHT = 200


async def noop(ctx: dict[str, Any]) -> None:
    _harness.job_done()


async def sleepy(ctx: dict[str, Any], seconds: float) -> None:
    _harness.job_started()
    await asyncio.sleep(seconds)
    _harness.job_done()


async def stamp(ctx: dict[str, Any], enqueued_at: float) -> None:
    _harness.job_stamp(enqueued_at)


def build(opts: _harness.Options) -> _harness.Library:
    settings = RedisSettings.from_dsn(opts.redis_url)
    worker_settings: dict[str, Any] = {
        "max_jobs": opts.concurrency,
        # an idle worker waiting for jobs must not leave when the queue is empty
        "burst": opts.scenario != "pickup",
        "handle_signals": False,
    }

    async def enqueue() -> None:
        pool = await create_pool(settings)
        if opts.scenario == "pickup":
            try:
                await _harness.paced(opts, lambda at: pool.enqueue_job("stamp", at))
            finally:
                await pool.aclose()
            return
        limit = asyncio.Semaphore(ENQUEUE_IN_FLIGHT)

        async def one() -> None:
            async with limit:
                if opts.scenario == "noop":
                    await pool.enqueue_job("noop")
                else:
                    await pool.enqueue_job("sleepy", opts.sleep_s)

        try:
            await asyncio.gather(*(one() for _ in range(opts.jobs)))
        finally:
            await pool.aclose()

    async def work(done: _harness.Completions) -> None:
        worker = Worker(functions=[noop, sleepy, stamp], redis_settings=settings, **worker_settings)
        try:
            if worker_settings["burst"]:
                # burst mode returns once the queue is empty and running jobs are done
                await worker.async_run()
            else:
                runner = asyncio.create_task(worker.async_run())
                await done.event.wait()
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
        finally:
            # after a cancelled run, close() re-raises the cancellation of the job tasks
            with contextlib.suppress(asyncio.CancelledError):
                await worker.close()

    shown = {k: v for k, v in worker_settings.items() if k != "handle_signals"}
    return _harness.Library(
        name="arq",
        version=version("arq"),
        settings={
            **shown,
            "other": "defaults (poll_delay=0.5 s, queue_read_limit=max(5*max_jobs, 100))",
            "enqueue": f"asyncio.gather of enqueue_job, {ENQUEUE_IN_FLIGHT} in flight",
            "loop": "uvloop",
        },
        enqueue=enqueue,
        work=work,
    )


if __name__ == "__main__":
    _harness.main(build)
