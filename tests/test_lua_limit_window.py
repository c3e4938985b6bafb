"""The limit_window script: at most `limit` units in any interval of `per`, exact."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aioworker.limits import Window
from tests.limitkit import LimitKit, limit_url, open_limit_kit

__all__ = ("limit_url",)

PER_US = 10_000_000


@pytest.fixture
async def kit(limit_url: str, prefix: str) -> AsyncIterator[LimitKit]:
    async with open_limit_kit(limit_url, prefix) as k:
        yield k


def window(kit: LimitKit, limit: int = 3) -> Window:
    return Window("api", limit, per=10, on=kit.broker, prefix=kit.prefix)


async def age(kit: LimitKit, w: Window, by_us: int, count: int) -> None:
    """Move the `count` oldest units `by_us` into the past."""
    log = await kit.zset(w.keys.log)
    for member in sorted(log, key=log.__getitem__)[:count]:
        await kit.raw.zadd(w.keys.log, {member: log[member] - by_us})


async def test_admits_limit_units_then_refuses_until_the_oldest_leaves(kit: LimitKit) -> None:
    w = window(kit)
    admitted = [await w.try_acquire() for _ in range(3)]
    assert all(admitted)
    log = await kit.zset(w.keys.log)
    assert sorted(log.values()) == [a.redis_time_us for a in admitted]
    before = await kit.state(w)

    refused = await w.try_acquire()

    assert not refused
    # exactly when the oldest unit's interval ends: its time + per, rounded up to the ms
    expected_ms = -(-(admitted[0].redis_time_us + PER_US - refused.redis_time_us) // 1000)
    assert refused.retry_after_s == expected_ms / 1000
    assert await kit.state(w) == before
    assert 0 < await kit.pttl(w.keys.log) <= 10_001


async def test_a_unit_leaves_the_window_once_per_has_passed_since_it_was_admitted(
    kit: LimitKit,
) -> None:
    w = window(kit)
    for _ in range(3):
        assert await w.try_acquire()
    now = await kit.now_us()
    log = await kit.zset(w.keys.log)
    oldest = min(log, key=log.__getitem__)
    # admitted a little less than `per` ago (a second of slack for a slow machine): inside
    await kit.raw.zadd(w.keys.log, {oldest: now - PER_US + 1_000_000})
    assert not await w.try_acquire()
    # admitted `per` ago: gone
    await kit.raw.zadd(w.keys.log, {oldest: now - PER_US})
    assert await w.try_acquire()
    assert oldest not in await kit.zset(w.keys.log)
    assert len(await kit.zset(w.keys.log)) == 3


async def test_cost_takes_that_many_units_and_must_fit_whole(kit: LimitKit) -> None:
    w = window(kit, limit=5)
    first = await w.try_acquire(cost=3)
    assert first
    assert len(await kit.zset(w.keys.log)) == 3
    refused = await w.try_acquire(cost=3)
    assert not refused
    # one unit must leave: the oldest (all three of the first call share its time)
    expected_ms = -(-(first.redis_time_us + PER_US - refused.redis_time_us) // 1000)
    assert refused.retry_after_s == expected_ms / 1000
    assert await w.try_acquire(cost=2)
    assert len(await kit.zset(w.keys.log)) == 5
    with pytest.raises(ValueError, match="between 1 and 5"):
        await w.try_acquire(cost=6)
    with pytest.raises(ValueError):
        await w.try_acquire(cost=0)


async def test_waiters_are_told_their_turn_in_line(kit: LimitKit) -> None:
    w = window(kit, limit=2)
    a1, a2 = await w.try_acquire(), await w.try_acquire()
    await age(kit, w, 1_000_000, 1)  # the first unit 1 s older than the second
    log = sorted((await kit.zset(w.keys.log)).values())

    replies = [await w.attempt(waiter=name) for name in ("w0", "w1", "w2", "w3")]

    assert not any(replies)
    now = [r.redis_time_us for r in replies]
    # w0 gets the first unit to leave, w1 the second; w2 and w3 the units w0 and w1 will
    # have taken, one `per` later
    expected = [
        log[0] + PER_US - now[0],
        log[1] + PER_US - now[1],
        log[0] + 2 * PER_US - now[2],
        log[1] + 2 * PER_US - now[3],
    ]
    assert [r.retry_after_s for r in replies] == [-(-e // 1000) / 1000 for e in expected]
    assert set(await kit.zset(w.keys.waits)) == {"w0", "w1", "w2", "w3"}
    del a1, a2
