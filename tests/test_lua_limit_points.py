"""The limit_points script: a budget of points refilled continuously, spent by cost."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aioworker.limits import Points
from tests.limitkit import LimitKit, limit_url, open_limit_kit

__all__ = ("limit_url",)


@pytest.fixture
async def kit(limit_url: str, prefix: str) -> AsyncIterator[LimitKit]:
    async with open_limit_kit(limit_url, prefix) as k:
        yield k


def points(kit: LimitKit) -> Points:
    # 10 points, refilled at one point per second
    return Points("graphql", 10, per=10, on=kit.broker, prefix=kit.prefix)


async def test_calls_spend_their_cost_until_the_budget_cannot_cover_one(kit: LimitKit) -> None:
    p = points(kit)
    a = await p.try_acquire(cost=4)
    b = await p.try_acquire(cost=4)
    assert a and b
    stored = await kit.hash(p.keys.points)
    assert int(stored["t"]) == b.redis_time_us
    left = 10 - 8 + (b.redis_time_us - a.redis_time_us) / 1_000_000
    assert float(stored["p"]) == pytest.approx(left, abs=1e-9)
    before = await kit.state(p)

    refused = await p.try_acquire(cost=4)

    assert not refused
    # two points short (less what refilled since), refilled at one per second
    assert 1.0 < refused.retry_after_s <= 2.0
    assert await kit.state(p) == before
    assert 0 < await kit.pttl(p.keys.points) <= 8_001


async def test_points_refill_with_time_up_to_the_capacity(kit: LimitKit) -> None:
    p = points(kit)
    assert await p.try_acquire(cost=10)
    assert not await p.try_acquire(cost=1)
    stored = await kit.hash(p.keys.points)
    # five seconds later: five points back
    await kit.raw.hset(p.keys.points, "t", str(int(stored["t"]) - 5_000_000))
    assert not await p.try_acquire(cost=8)
    assert await p.try_acquire(cost=5)
    # an hour later: never more than the capacity
    await kit.raw.hset(p.keys.points, "t", str(await kit.now_us() - 3_600_000_000))
    assert await p.try_acquire(cost=10)
    assert not await p.try_acquire(cost=1)


async def test_a_cost_above_the_capacity_is_refused_at_once(kit: LimitKit) -> None:
    p = points(kit)
    with pytest.raises(ValueError, match="between 1 and 10"):
        await p.try_acquire(cost=11)
    assert await kit.state(p) == {}


async def test_waiters_further_back_wait_for_their_own_and_older_costs(kit: LimitKit) -> None:
    p = points(kit)
    assert await p.try_acquire(cost=10)
    replies = [await p.attempt(cost=2, waiter=f"w{i}") for i in range(3)]
    assert not any(replies)
    # 2, 4 and 6 points to refill at one per second (less what refilled meanwhile)
    for i, r in enumerate(replies):
        assert 2 * (i + 1) - 1.0 < r.retry_after_s <= 2 * (i + 1)
