"""limit_peek: a read-only look at one limiter name's keys (dashboards, inspection)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aioworker.limit_info import limit_peek
from aioworker.limits import Bucket, Concurrent, Window
from tests.limitkit import LimitKit, limit_url, open_limit_kit, slots_of

__all__ = ("limit_url",)


@pytest.fixture
async def kit(limit_url: str, prefix: str) -> AsyncIterator[LimitKit]:
    async with open_limit_kit(limit_url, prefix) as k:
        yield k


async def test_counts_live_holds_and_waiters_and_changes_nothing(kit: LimitKit) -> None:
    c = Concurrent("crm", 2, lease=30, on=kit.broker, prefix=kit.prefix)
    assert await c.attempt(token="a")
    assert await c.attempt(token="b")
    assert not await c.attempt(token="c", waiter="job-1")
    assert not await c.attempt(token="d", waiter="job-2")
    now_ms = (await kit.now_us()) // 1000
    await kit.raw.zadd(c.keys.holders, {"b": now_ms - 1})  # lapsed: its holder crashed
    before = await kit.state(c)

    held, waiting, in_window, in_bucket = await limit_peek(c)

    assert (held, waiting, in_window, in_bucket) == (1, 2, 0, 0)
    assert await kit.state(c) == before  # read-only: the lapsed hold is not taken back here


async def test_window_counts_only_units_inside_the_period(kit: LimitKit) -> None:
    w = Window("api", 10, per=60, on=kit.broker, prefix=kit.prefix)
    for _ in range(3):
        assert await w.attempt()
    now_us = await kit.now_us()
    await kit.raw.zadd(w.keys.log, {"old": now_us - 61_000_000})  # left the window

    assert await limit_peek(w) == (0, 0, 3, 0)


async def test_bucket_counts_only_the_current_window(kit: LimitKit) -> None:
    b = Bucket("mail", 100, per=3600, on=kit.broker, prefix=kit.prefix)
    assert await b.attempt(cost=4)
    assert (await limit_peek(b))[3] == 4
    await kit.raw.hset(b.keys.bucket, "w", "1")  # a window long gone
    assert (await limit_peek(b))[3] == 0


async def test_a_limiter_never_used_reads_as_empty(kit: LimitKit) -> None:
    c = Concurrent("unused", 1, on=kit.broker, prefix=kit.prefix)
    assert await limit_peek(c) == (0, 0, 0, 0)
    k = c.keys
    assert len(slots_of([k.holders, k.waits, k.log, k.bucket])) == 1
