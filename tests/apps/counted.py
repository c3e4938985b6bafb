"""A worker app for the topology fault tests: every run of a job is counted elsewhere.

Each run adds one to the job's field in ``<prefix>:runs`` on a separate counter server
(``TEST_COUNTER_URL``), so runs are counted across failovers and slot moves of the
cluster the jobs live on; a run that is not the job's first attempt (its lease expired and
the job was recovered) is also marked in ``<prefix>:recovered``. The worker reads its Redis
URL from ``AIOWORKER_REDIS_URL`` and its key prefix from ``TEST_PREFIX``.
"""

from __future__ import annotations

import asyncio
import os

import redis.asyncio as aioredis

from aioworker import Backoff, JobContext, Worker

__all__ = ("LEASE_S", "build", "recovered_key", "runs_key", "worker")

LEASE_S = 5.0

_counter: list[aioredis.Redis] = []


def runs_key(prefix: str) -> str:
    """The HASH of job id -> runs started, on the counter server."""
    return f"{prefix}:runs"


def recovered_key(prefix: str) -> str:
    """The SET of job ids that ran as a later attempt, on the counter server."""
    return f"{prefix}:recovered"


def _counter_client() -> aioredis.Redis:
    if not _counter:
        _counter.append(aioredis.Redis.from_url(os.environ["TEST_COUNTER_URL"]))
    return _counter[0]


async def count(ctx: JobContext, n: int, seconds: float) -> int:
    """Count this run, sleep ``seconds`` and return ``n``."""
    counter = _counter_client()
    await counter.hincrby(runs_key(ctx.client.prefix), ctx.job_id, 1)
    if ctx.attempt > 1:
        await counter.sadd(recovered_key(ctx.client.prefix), ctx.job_id)
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
    w.task(name="count")(count)
    return w


worker = build()
