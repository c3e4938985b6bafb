"""The limit_bucket script: at most `limit` units per fixed, epoch-aligned window."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aioworker.limits import Bucket
from tests.limitkit import LimitKit, limit_url, open_limit_kit

__all__ = ("limit_url",)

PER_MS = 3_600_000  # an hour: the test never crosses a window boundary by itself


@pytest.fixture
async def kit(limit_url: str, prefix: str) -> AsyncIterator[LimitKit]:
    async with open_limit_kit(limit_url, prefix) as k:
        yield k


def bucket(kit: LimitKit, limit: int = 3) -> Bucket:
    return Bucket("mail", limit, per=3600, on=kit.broker, prefix=kit.prefix)


async def test_admits_limit_units_per_window_then_refuses_until_it_ends(kit: LimitKit) -> None:
    b = bucket(kit)
    admitted = [await b.try_acquire() for _ in range(3)]
    assert all(admitted)
    window = admitted[-1].redis_time_us // 1000 // PER_MS
    if admitted[0].redis_time_us // 1000 // PER_MS != window:
        pytest.skip("crossed an hour boundary while acquiring")
    assert await kit.hash(b.keys.bucket) == {"w": str(window), "n": "3"}
    before = await kit.state(b)

    refused = await b.try_acquire()

    assert not refused
    now_ms = refused.redis_time_us // 1000
    assert refused.retry_after_s == ((window + 1) * PER_MS - now_ms) / 1000
    assert await kit.state(b) == before
    assert 0 < await kit.pttl(b.keys.bucket) <= (window + 1) * PER_MS - now_ms + 1


async def test_a_new_window_starts_from_zero(kit: LimitKit) -> None:
    b = bucket(kit)
    for _ in range(3):
        assert await b.try_acquire()
    assert not await b.try_acquire()
    window = int((await kit.hash(b.keys.bucket))["w"])
    # the units were used in the previous window
    await kit.raw.hset(b.keys.bucket, "w", str(window - 1))

    assert await b.try_acquire(cost=2)

    assert await kit.hash(b.keys.bucket) == {"w": str(window), "n": "2"}
    assert await b.try_acquire()
    assert not await b.try_acquire()


async def test_cost_must_fit_in_what_is_left(kit: LimitKit) -> None:
    b = bucket(kit, limit=5)
    assert await b.try_acquire(cost=4)
    assert not await b.try_acquire(cost=2)
    assert (await kit.hash(b.keys.bucket))["n"] == "4"
    assert await b.try_acquire(cost=1)
    with pytest.raises(ValueError, match="between 1 and 5"):
        await b.try_acquire(cost=6)


async def test_waiters_further_back_wait_whole_windows_more(kit: LimitKit) -> None:
    b = bucket(kit, limit=2)
    assert await b.try_acquire(cost=2)
    replies = [await b.attempt(waiter=f"w{i}") for i in range(5)]
    assert not any(replies)
    ends = (replies[0].redis_time_us // 1000 // PER_MS + 1) * PER_MS
    extra = [round(r.retry_after_s * 1000) - (ends - r.redis_time_us // 1000) for r in replies]
    # two units per window: w0, w1 next window; w2, w3 the one after; w4 the third
    assert extra == [0, 0, PER_MS, PER_MS, 2 * PER_MS]
