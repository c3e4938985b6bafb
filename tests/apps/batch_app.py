"""Worker app for the batch tests: children that fail on demand, callbacks that record runs.

The worker process reads its Redis URL from ``AIOWORKER_REDIS_URL``, its key prefix from
``TEST_PREFIX`` and its queues from ``TEST_QUEUES`` (comma-separated; the first is where
the tasks go unless a job says otherwise).  Every run is recorded in Redis under the
test's prefix, so tests can assert exactly which job ran how many times:

- ``<prefix>:{t}:runs``       HASH  job id -> runs started
- ``<prefix>:{t}:callbacks``  LIST  one json record per callback run (its attempt, its
  batch and the counts the batch passed to it)
- ``<prefix>:{t}:fixed``      STRING  while it exists, children asked to fail succeed
"""

from __future__ import annotations

import asyncio
import os

import orjson
import redis.asyncio
from redis.asyncio.cluster import RedisCluster

from aioworker import Backoff, JobContext, Worker

__all__ = ("Book", "build", "worker")

QUEUES = [q for q in os.environ.get("TEST_QUEUES", "default").split(",") if q]


class Book:
    """The test's bookkeeping keys, on a plain or a cluster client."""

    def __init__(self, url: str, prefix: str, cluster: bool) -> None:
        self.client: redis.asyncio.Redis | RedisCluster = (
            RedisCluster.from_url(url) if cluster else redis.asyncio.Redis.from_url(url)
        )
        self._cluster = cluster
        self._ready = False
        self._lock = asyncio.Lock()
        self.runs = f"{prefix}:{{t}}:runs"
        self.callbacks = f"{prefix}:{{t}}:callbacks"
        self.fixed = f"{prefix}:{{t}}:fixed"

    async def ready(self) -> None:
        """Initialise a cluster client once: fifty jobs doing it at once break its pool."""
        if self._ready:
            return
        async with self._lock:
            if not self._ready and isinstance(self.client, RedisCluster):
                await self.client.initialize()
            self._ready = True

    async def run_counts(self) -> dict[str, int]:
        raw = await self.client.hgetall(self.runs)
        return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}

    async def callback_records(self) -> list[dict[str, object]]:
        raw = await self.client.lrange(self.callbacks, 0, -1)
        return [orjson.loads(r) for r in raw]

    async def close(self) -> None:
        await self.client.aclose()


def build(
    redis_url: str | None = None,
    prefix: str | None = None,
    queues: list[str] | None = None,
    *,
    cluster: bool | None = None,
) -> tuple[Worker, Book]:
    """The app's worker with its tasks registered, and its bookkeeping.

    :param cluster: whether the bookkeeping client talks to a cluster (default
        ``$TEST_CLUSTER == "1"``).
    """
    prefix = prefix or os.environ.get("TEST_PREFIX", "aioworker")
    queues = queues or QUEUES
    w = Worker(
        redis_url,
        prefix=prefix,
        queues=dict.fromkeys(queues, 50),
        lease_timeout=5,
        shutdown_grace=5,
        cancel_grace=1,
        backoff=Backoff(base_s=0.05, jitter=False),
    )
    if cluster is None:
        cluster = os.environ.get("TEST_CLUSTER") == "1"
    book = Book(w.redis_url, prefix, cluster)
    home = queues[0]

    async def ran(ctx: JobContext) -> None:
        await book.ready()
        await book.client.hincrby(book.runs, ctx.job_id, 1)

    @w.task(name="child", queue=home, retries=0)
    async def child(ctx: JobContext, n: int, fail: bool = False) -> int:
        await ran(ctx)
        if fail and not await book.client.exists(book.fixed):
            raise ValueError(f"child {n} failed")
        return n

    @w.task(name="flaky", queue=home, retries=2)
    async def flaky(ctx: JobContext, n: int) -> int:
        await ran(ctx)
        if ctx.attempt < 3:
            raise ValueError(f"attempt {ctx.attempt} of flaky {n}")
        return n

    @w.task(name="slow", queue=home, retries=0)
    async def slow(ctx: JobContext, n: int, seconds: float) -> int:
        await ran(ctx)
        await asyncio.sleep(seconds)
        return n

    @w.task(name="parent", queue=home, retries=0)
    async def parent(ctx: JobContext, n: int, fanout: int) -> int:
        """Adds ``fanout`` children to its own batch (ids derived from its own id)."""
        await ran(ctx)
        batch = ctx.batch
        assert batch is not None
        return await batch.add(
            child.options(job_id=f"{ctx.job_id}.{i}", queue=queues[i % len(queues)]).call(
                n * 100 + i
            )
            for i in range(fanout)
        )

    async def record(ctx: JobContext, tag: str) -> None:
        await ran(ctx)
        batch = ctx.batch
        outcome = None if batch is None else batch.outcome
        entry = {"tag": tag, "job": ctx.job_id, "attempt": ctx.attempt}
        if batch is not None and outcome is not None:
            entry |= {
                "batch": batch.id,
                "event": outcome.event,
                "total": outcome.total,
                "succeeded": outcome.succeeded,
                "failed": outcome.failed,
                "skipped": outcome.skipped,
            }
        await book.client.rpush(book.callbacks, orjson.dumps(entry))

    @w.task(name="report", queue=queues[-1], retries=3)
    async def report(ctx: JobContext, tag: str) -> None:
        await record(ctx, tag)

    @w.task(name="report_flaky", queue=queues[-1], retries=3)
    async def report_flaky(ctx: JobContext, tag: str) -> None:
        await record(ctx, tag)
        if ctx.attempt == 1:
            raise RuntimeError("the callback's first attempt fails")

    return w, book


worker, _book = build()
