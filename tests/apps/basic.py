"""A small worker app for tests that run the real CLI.

The worker process reads its Redis URL from ``AIOWORKER_REDIS_URL`` (the Worker's own
default) and its key prefix from ``TEST_PREFIX``, so each test keeps its keys apart.
Tests build a producer for the same app with :func:`build`.
"""

from __future__ import annotations

import asyncio
import os

from aioworker import Backoff, JobContext, Worker

__all__ = ("build", "not_a_worker", "worker")


async def add(ctx: JobContext, a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def fail(ctx: JobContext, reason: str) -> None:
    """Always fail."""
    raise ValueError(reason)


async def nap(ctx: JobContext, n: int, seconds: float) -> int:
    """Sleep a little and return ``n``."""
    await asyncio.sleep(seconds)
    return n


def build(redis_url: str | None = None, prefix: str | None = None) -> Worker:
    """The app's worker with its tasks registered.

    :param redis_url: default ``$AIOWORKER_REDIS_URL``.
    :param prefix: default ``$TEST_PREFIX``.
    """
    w = Worker(
        redis_url,
        prefix=prefix or os.environ.get("TEST_PREFIX", "aioworker"),
        lease_timeout=float(os.environ.get("TEST_LEASE_S", "5")),
        shutdown_grace=5,
        cancel_grace=1,
        backoff=Backoff(base_s=0.1, jitter=False),
    )
    w.task(name="add")(add)
    w.task(name="fail", retries=0)(fail)
    w.task(name="nap")(nap)
    return w


worker = build()

#: Not a Worker: for the CLI's "not a Worker" error.
not_a_worker = "just a string"
