"""A worker app for the inspection and operation tests (CLI, registry, cancel, metrics).

Run as a subprocess it reads ``AIOWORKER_REDIS_URL``, ``TEST_PREFIX`` and ``TEST_LEASE_S``
from the environment.  In-process CLI tests rebind :data:`worker` with :func:`build`
before each command, so every command sees the test's own Redis and prefix.
"""

from __future__ import annotations

import asyncio
import logging
import os

from aioworker import Backoff, JobContext, Worker

__all__ = ("build", "worker")

log = logging.getLogger("tests.apps.ops")


async def add(ctx: JobContext, a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def add_for(ctx: JobContext, tenant: str, n: int) -> int:
    """Add one for a tenant (a task of a fair-share group, in the tests that need one)."""
    return n + 1


async def fail(ctx: JobContext, reason: str) -> None:
    """Always fail (no retries: dead-lettered at once)."""
    raise ValueError(reason)


async def other_fail(ctx: JobContext, reason: str) -> None:
    """Always fail too, under another task name."""
    raise RuntimeError(reason)


async def block(ctx: JobContext, tag: str) -> str:
    """Log a line from inside the job, save a checkpoint, then wait for a long time."""
    log.info("blocking job %s started", tag)
    await ctx.checkpoint({"tag": tag})
    try:
        await asyncio.sleep(3600)
    finally:
        log.info("blocking job %s left its sleep", tag)
    return tag


def build(redis_url: str | None = None, prefix: str | None = None) -> Worker:
    """The app's worker with its tasks registered.

    :param redis_url: default ``$AIOWORKER_REDIS_URL``.
    :param prefix: default ``$TEST_PREFIX``.
    """
    w = Worker(
        redis_url,
        prefix=prefix or os.environ.get("TEST_PREFIX", "aioworker"),
        queues={"default": 20, "other": 5},
        lease_timeout=float(os.environ.get("TEST_LEASE_S", "4")),
        shutdown_grace=5,
        cancel_grace=1,
        backoff=Backoff(base_s=0.1, jitter=False),
    )
    w.task(name="add")(add)
    w.task(name="fail", retries=0)(fail)
    w.task(name="other_fail", retries=0)(other_fail)
    w.task(name="block", retries=0)(block)
    return w


worker = build()
