"""A unique task, and a producer that enqueues it many times at once (for the unique tests).

``python -m tests.apps.unique_app N START_AT`` builds the app on ``AIOWORKER_REDIS_URL``
with the key prefix ``TEST_PREFIX``, waits until the epoch time ``START_AT``, enqueues
``report(42)`` N times concurrently and prints one line of JSON: ``[[job id, created],
...]``.  Tests run the worker in their own process with :func:`build`; runs of the task
are appended to :data:`RUNS`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import orjson

from aioworker import JobContext, Unique, Worker

__all__ = ("RUNS", "build")

#: (job id, account) of every run of ``report`` in this process.
RUNS: list[tuple[str, int]] = []


def build(redis_url: str | None = None, prefix: str | None = None) -> Worker:
    """The app: ``report(account)``, unique until it succeeds.

    :param redis_url: default ``$AIOWORKER_REDIS_URL``.
    :param prefix: default ``$TEST_PREFIX``.
    """
    w = Worker(redis_url, prefix=prefix or os.environ.get("TEST_PREFIX", "aioworker"))

    @w.task(name="report", unique=Unique("until_succeeded", ttl=60))
    async def report(ctx: JobContext, account: int) -> int:
        RUNS.append((ctx.job_id, account))
        return account

    return w


async def _produce(n: int, start_at: float) -> list[tuple[str, bool]]:
    w = build()
    try:
        await w.client.broker.connect()
        await asyncio.sleep(max(start_at - time.time(), 0))
        handles = await asyncio.gather(*(w.enqueue("report", 42) for _ in range(n)))
        return [(h.id, h.created) for h in handles]
    finally:
        await w.close()


if __name__ == "__main__":
    count, start = int(sys.argv[1]), float(sys.argv[2])
    sys.stdout.write(orjson.dumps(asyncio.run(_produce(count, start))).decode() + "\n")
