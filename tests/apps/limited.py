"""A worker app with limited tasks, for tests that run several real worker processes.

- ``capped`` (queue ``capped``): ``global_concurrency=5``; it counts the jobs running at
  once in Redis (``track_key(prefix, "now")``) and keeps the most seen (``"peak"``).
- ``held`` (queue ``held``): ``global_concurrency=1``; its first attempt sleeps long.
- ``window``, ``bucket``, ``gcra`` (queues of the same names): rate-limited at 50 per
  second (GCRA with bursts of 5); their limiters record the Redis time of every admission
  in ``track_key(prefix, "admitted:<limiter>")``, so a test can check each definition
  exactly, whichever process admitted the job.

The worker process reads its Redis URL from ``AIOWORKER_REDIS_URL``, its key prefix from
``TEST_PREFIX`` and its lease from ``TEST_LEASE_S``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aioworker import GCRA, Backoff, Bucket, JobContext, Window, Worker
from aioworker.limits import Admission, Limiter

__all__ = ("RATE", "build", "track_key", "worker")

#: Admissions per second of the rate-limited tasks.
RATE = 50

_PEAK = """
local now = redis.call('INCR', KEYS[1])
if now > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], now) end
return now
"""


def track_key(prefix: str, what: str) -> str:
    """A key of the test's own counters (all in one cluster slot)."""
    return f"{prefix}:{{track}}:{what}"


class Recorded(Limiter):
    """Records the Redis time of each admission it grants."""

    async def attempt(self, **kwargs: Any) -> Admission:
        adm = await super().attempt(**kwargs)
        if adm:
            client = await self.broker.connect()
            key = track_key(self.keys.prefix, f"admitted:{self.name}")
            await client.rpush(key, adm.redis_time_us)
        return adm


class RecordedWindow(Recorded, Window):
    pass


class RecordedBucket(Recorded, Bucket):
    pass


class RecordedGCRA(Recorded, GCRA):
    pass


async def capped(ctx: JobContext, seconds: float) -> int:
    """Hold one of the five fleet-wide slots for ``seconds``, counted in Redis."""
    client = await ctx.client.broker.connect()
    prefix = ctx.client.prefix
    now, peak = track_key(prefix, "now"), track_key(prefix, "peak")
    await client.eval(_PEAK, 2, now, peak)
    try:
        await asyncio.sleep(seconds)
    finally:
        await client.decr(now)
    await client.rpush(track_key(prefix, "ran"), ctx.job_id)
    return ctx.attempt


async def held(ctx: JobContext, seconds: float) -> int:
    """Sleep ``seconds`` on the first attempt (long enough to be killed), not after."""
    if ctx.attempt == 1:
        await asyncio.sleep(seconds)
    return ctx.attempt


async def paced(ctx: JobContext) -> int:
    return ctx.attempt


def build(redis_url: str | None = None, prefix: str | None = None) -> Worker:
    """The app's worker with its tasks registered.

    :param redis_url: default ``$AIOWORKER_REDIS_URL``.
    :param prefix: default ``$TEST_PREFIX``.
    """
    w = Worker(
        redis_url,
        prefix=prefix or os.environ.get("TEST_PREFIX", "aioworker"),
        queues={"capped": 10, "held": 4, "window": 20, "bucket": 20, "gcra": 20},
        lease_timeout=float(os.environ.get("TEST_LEASE_S", "2")),
        shutdown_grace=5,
        cancel_grace=1,
        backoff=Backoff(base_s=0.1, jitter=False),
    )
    w.task(name="capped", queue="capped", retries=0, global_concurrency=5)(capped)
    w.task(name="held", queue="held", global_concurrency=1)(held)
    limiters: dict[str, Limiter] = {
        "window": RecordedWindow("window", RATE, per=1),
        "bucket": RecordedBucket("bucket", RATE, per=1),
        "gcra": RecordedGCRA("gcra", RATE, per=1, burst=5),
    }
    for name, limiter in limiters.items():
        w.task(name=name, queue=name, retries=0, rate_limit=limiter)(paced)
    return w


worker = build()
