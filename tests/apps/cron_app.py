"""A worker app with periodic jobs, for the cron tests that run several worker processes.

Every run of a periodic job records its tick in Redis (see :func:`runs_key`), so a test
can count exactly how often each tick ran across processes.  Results expire after one
second, so the idempotent job id cannot hide a tick enqueued twice: only the schedule's
marker guards against doubles.  The process reads its Redis URL from
``AIOWORKER_REDIS_URL``, its key prefix from ``TEST_PREFIX``, its lease (and so the cron
leadership's TTL) from ``TEST_LEASE_S``.
"""

from __future__ import annotations

import os

import redis.asyncio as aioredis

from aioworker import JobContext, Worker, tick_of

__all__ = ("build", "close_clients", "runs_key", "worker")

_clients: dict[str, aioredis.Redis | aioredis.RedisCluster] = {}


def runs_key(prefix: str, kind: str) -> str:
    """HASH of ``kind`` (``ticks``: first attempts, ``reruns``: later ones) -> tick ms -> count."""
    return f"{prefix}:test:{kind}"


async def close_clients() -> None:
    """Close the clients the jobs opened in this process (for tests that run jobs in-process)."""
    while _clients:
        _, client = _clients.popitem()
        await client.aclose()


async def record(ctx: JobContext) -> str:
    """Count this run under its tick: first attempts and re-runs apart."""
    tick = tick_of(ctx)
    assert tick is not None, ctx.job_id
    kind = "ticks" if ctx.attempt == 1 else "reruns"
    field = f"now:{ctx.job_id}" if tick.manual else str(int(tick.at.timestamp() * 1000))
    # the worker's own connection: it is initialised before any job runs (a fresh cluster
    # client used by several jobs at once races its first initialisation and may resend)
    client = await ctx.client.broker.connect()
    await client.hincrby(runs_key(ctx.client.prefix, kind), field, 1)
    return field


def build(redis_url: str | None = None, prefix: str | None = None) -> Worker:
    """The app's worker with its schedules registered.

    :param redis_url: default ``$AIOWORKER_REDIS_URL``.
    :param prefix: default ``$TEST_PREFIX``.
    """
    w = Worker(
        redis_url,
        prefix=prefix or os.environ.get("TEST_PREFIX", "aioworker"),
        lease_timeout=float(os.environ.get("TEST_LEASE_S", "3")),
        result_ttl=1,
        shutdown_grace=3,
        cancel_grace=1,
    )
    w.cron(every=1, name="every-second")(record)
    w.cron("0 3 1 * *", tz="Asia/Tokyo", name="monthly-tokyo", missed="catch_up")(
        w.task(name="monthly")(record)
    )
    return w


worker = build()
