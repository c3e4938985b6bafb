"""A worker app with long, checkpointing jobs, for crash and shutdown tests.

Jobs record what happened to them in plain Redis keys next to the queue's keys (see
:func:`mark_key`), so a test can count exactly how often each job started, completed, or
ran one of its steps, across worker processes.  The worker process reads its Redis URL
from ``AIOWORKER_REDIS_URL`` and its key prefix from ``TEST_PREFIX``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from aioworker import Backoff, JobContext, Worker

__all__ = ("LEASE_S", "build", "mark_key", "parse_starts", "worker")

#: Short lease, so recovery after a crash is quick.
LEASE_S = 2.0

_clients: dict[str, aioredis.Redis] = {}


def mark_key(prefix: str, kind: str, job_id: str) -> str:
    """The key where jobs count ``kind`` events (starts, completions, steps)."""
    return f"{prefix}:marks:{kind}:{job_id}"


def _redis(ctx: JobContext) -> aioredis.Redis:
    client = _clients.get(ctx.client.broker.url)
    if client is None:
        # no socket timeout: on Python 3.11 redis-py's timeout can swallow a cancellation
        client = aioredis.Redis.from_url(ctx.client.broker.url, socket_timeout=None)
        _clients[ctx.client.broker.url] = client
    return client


async def _mark(ctx: JobContext, kind: str) -> int:
    return int(await _redis(ctx).incr(mark_key(ctx.client.prefix, kind, ctx.job_id)))


async def _note_start(ctx: JobContext) -> None:
    """Record the start of this run: wall time and attempt."""
    key = mark_key(ctx.client.prefix, "starts", ctx.job_id)
    await _redis(ctx).rpush(key, f"{time.time()}|{ctx.attempt}")


async def ticker(ctx: JobContext, ticks: int, tick_s: float) -> dict[str, Any]:
    """Work for ``ticks`` ticks, checkpointing the number done after each one."""
    resumed_from = ctx.state
    await _note_start(ctx)
    done = int(resumed_from or 0)
    while done < ticks:
        await asyncio.sleep(tick_s)
        done += 1
        await ctx.checkpoint(done)
    await _mark(ctx, "completions")
    return {"resumed_from": resumed_from, "attempt": ctx.attempt}


async def stubborn(ctx: JobContext, seconds: float) -> dict[str, Any]:
    """Ignore the first cancellation and keep sleeping (unless resumed)."""
    resumed_from = ctx.state
    await _note_start(ctx)
    if resumed_from is None:
        await ctx.checkpoint("started")
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            await asyncio.sleep(seconds)  # misbehaves on purpose
    await _mark(ctx, "completions")
    return {"resumed_from": resumed_from, "attempt": ctx.attempt}


async def stepper(ctx: JobContext, step2_s: float) -> list[str]:
    """Two idempotent steps; the second is slow the first time it is called."""

    async def one() -> str:
        await _mark(ctx, "step1")
        return "one"

    async def two() -> str:
        if await _mark(ctx, "step2") == 1:
            await asyncio.sleep(step2_s)
        return "two"

    await _note_start(ctx)
    first = await ctx.step("one", one)
    second = await ctx.step("two", two)
    await _mark(ctx, "completions")
    return [first, second]


def build(redis_url: str | None = None, prefix: str | None = None) -> Worker:
    """The app's worker with its tasks registered.

    :param redis_url: default ``$AIOWORKER_REDIS_URL``.
    :param prefix: default ``$TEST_PREFIX``.
    """
    w = Worker(
        redis_url,
        prefix=prefix or os.environ.get("TEST_PREFIX", "aioworker"),
        lease_timeout=LEASE_S,
        shutdown_grace=5,
        cancel_grace=1,
        retries=2,  # a crashed run counts as an attempt
        backoff=Backoff(base_s=0.1, jitter=False),
    )
    w.task(name="ticker")(ticker)
    w.task(name="stubborn")(stubborn)
    w.task(name="stepper")(stepper)
    return w


worker = build()


def parse_starts(raw: Sequence[bytes | str]) -> list[tuple[float, int]]:
    """Decode the ``starts`` list of a job: (wall time, attempt) per run."""
    out = []
    for item in raw:
        at, attempt = (item.decode() if isinstance(item, bytes) else item).split("|")
        out.append((float(at), int(attempt)))
    return out
