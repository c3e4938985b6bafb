"""A worker app for the corruptor fault test: short jobs that count their runs.

Each run adds one to the job's field in ``<prefix>:marks:runs`` (a plain HASH outside the
queue's keys, which the corruptor never touches), and one job in five saves a checkpoint
first, so the state HASH is written under load too.  The worker process reads its Redis
URL from ``AIOWORKER_REDIS_URL`` and its key prefix from ``TEST_PREFIX``.
"""

from __future__ import annotations

import asyncio
import os

import redis.asyncio as aioredis

from aioworker import Backoff, JobContext, Worker

__all__ = ("build", "runs_key", "worker")

LEASE_S = 3.0

_clients: dict[str, aioredis.Redis] = {}


def runs_key(prefix: str) -> str:
    """The HASH of job id -> runs started."""
    return f"{prefix}:marks:runs"


async def work(ctx: JobContext, n: int, seconds: float) -> int:
    """Count this run, maybe checkpoint, sleep ``seconds`` and return ``n``."""
    client = _clients.get(ctx.client.broker.url)
    if client is None:
        client = _clients[ctx.client.broker.url] = aioredis.Redis.from_url(ctx.client.broker.url)
    await client.hincrby(runs_key(ctx.client.prefix), ctx.job_id, 1)
    if n % 5 == 0:
        await ctx.checkpoint({"n": n})
    await asyncio.sleep(seconds)
    return n


def build(redis_url: str | None = None, prefix: str | None = None) -> Worker:
    """The app's worker with its task registered.

    :param redis_url: default ``$AIOWORKER_REDIS_URL``.
    :param prefix: default ``$TEST_PREFIX``.
    """
    w = Worker(
        redis_url,
        prefix=prefix or os.environ.get("TEST_PREFIX", "aioworker"),
        queues={"default": 50},
        lease_timeout=LEASE_S,
        retries=3,
        backoff=Backoff(base_s=0.05, jitter=False),
        shutdown_grace=5,
    )
    w.task(name="work")(work)
    return w


worker = build()
