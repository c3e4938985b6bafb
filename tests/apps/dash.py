"""A worker app for the dashboard tests (HTTP API and browser).

Run as a subprocess it reads ``AIOWORKER_REDIS_URL``, ``TEST_PREFIX`` and ``TEST_LEASE_S``
from the environment; in-process tests build their own with :func:`build`.  No task puts
its arguments into an error message, so the tests can check that arguments never leak.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aioworker import Backoff, JobContext, Worker
from aioworker.limits import Window

__all__ = ("build", "worker")


async def add(ctx: JobContext, a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def nap(ctx: JobContext, seconds: float) -> float:
    """Sleep a little."""
    await asyncio.sleep(seconds)
    return seconds


async def block(ctx: JobContext, secret: str) -> str:
    """Complete a step and save a checkpoint (both holding the argument), then wait."""
    await ctx.step("remember", _remember, secret)
    await ctx.checkpoint({"secret": secret})
    await asyncio.sleep(3600)
    return secret


async def fail(ctx: JobContext, secret: str) -> None:
    """Always fail, without naming its argument."""
    raise ValueError("the job failed")


async def fail_once(ctx: JobContext, marker: str) -> str:
    """Fail the first time (creating ``marker``), succeed once the marker exists."""
    if await asyncio.to_thread(_first_time, Path(marker)):
        raise RuntimeError("first run fails")
    return "ok"


def _first_time(path: Path) -> bool:
    try:
        path.touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


async def echo(ctx: JobContext, secret: str) -> dict[str, str]:
    """Return its argument (a result that holds caller data)."""
    return {"echo": secret}


async def _remember(secret: str) -> str:
    return secret


async def report(ctx: JobContext) -> str:
    """A periodic job."""
    return "report"


def build(redis_url: str | None = None, prefix: str | None = None) -> Worker:
    """The app's worker with its tasks, one schedule and one limiter.

    :param redis_url: default ``$AIOWORKER_REDIS_URL``.
    :param prefix: default ``$TEST_PREFIX``.
    """
    w = Worker(
        redis_url,
        prefix=prefix or os.environ.get("TEST_PREFIX", "aioworker"),
        queues={"default": 20, "other": 5},
        lease_timeout=float(os.environ.get("TEST_LEASE_S", "4")),
        shutdown_grace=2,
        cancel_grace=1,
        backoff=Backoff(base_s=0.1, jitter=False),
    )
    w.task(name="add")(add)
    w.task(name="nap")(nap)
    w.task(name="block", retries=0)(block)
    w.task(name="fail", retries=0)(fail)
    w.task(name="fail_once", retries=0)(fail_once)
    w.task(name="echo")(echo)
    w.task(name="limited", rate_limit=Window("dash-api", 100, per=60))(add)
    w.task(name="capped", global_concurrency=2)(add)
    w.cron(every=3600, name="hourly-report", queue="other")(report)
    return w


worker = build()
