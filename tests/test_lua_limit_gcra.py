"""The limit_gcra script: a smooth rate with bursts, kept as one theoretical arrival time."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aioworker.limits import GCRA
from tests.limitkit import LimitKit, limit_url, open_limit_kit

__all__ = ("limit_url",)

T_US = 1_000_000  # one unit per second


@pytest.fixture
async def kit(limit_url: str, prefix: str) -> AsyncIterator[LimitKit]:
    async with open_limit_kit(limit_url, prefix) as k:
        yield k


async def tat(kit: LimitKit, g: GCRA) -> int:
    """The stored theoretical arrival time."""
    raw = await kit.raw.get(g.keys.tat)
    assert raw is not None
    return int(raw)


def gcra(kit: LimitKit, burst: int = 3) -> GCRA:
    return GCRA("sms", 60, per=60, burst=burst, on=kit.broker, prefix=kit.prefix)


async def test_a_burst_passes_then_calls_are_spaced_one_interval_apart(kit: LimitKit) -> None:
    g = gcra(kit)
    assert g.interval_us == T_US
    admitted = [await g.try_acquire() for _ in range(3)]
    assert all(admitted)
    t0 = admitted[0].redis_time_us
    # each admission moves the arrival time one interval on from where it was
    assert await tat(kit, g) == t0 + 3 * T_US
    before = await kit.state(g)

    refused = await g.try_acquire()

    assert not refused
    # conforms again once tat - burst * T has come: at t0 + T
    assert refused.retry_after_s == -(-(t0 + T_US - refused.redis_time_us) // 1000) / 1000
    assert await kit.state(g) == before
    assert 0 < await kit.pttl(g.keys.tat) <= 3 * 1000 + 1


async def test_after_an_idle_spell_the_burst_is_back_but_never_more(kit: LimitKit) -> None:
    g = gcra(kit)
    for _ in range(3):
        assert await g.try_acquire()
    assert not await g.try_acquire()
    # long idle: a stored arrival time in the past counts as now
    await kit.raw.set(g.keys.tat, str(await kit.now_us() - 3600 * T_US))
    results = [bool(await g.try_acquire()) for _ in range(4)]
    assert results == [True, True, True, False]


async def test_cost_moves_the_arrival_time_by_cost_intervals(kit: LimitKit) -> None:
    g = gcra(kit)
    first = await g.try_acquire(cost=2)
    assert first
    assert await tat(kit, g) == first.redis_time_us + 2 * T_US
    assert not await g.try_acquire(cost=2)
    assert await g.try_acquire(cost=1)
    with pytest.raises(ValueError, match="between 1 and 3"):
        await g.try_acquire(cost=4)


async def test_the_interval_is_rounded_up_so_the_rate_is_never_exceeded(kit: LimitKit) -> None:
    assert GCRA("x", 3, per=1, on=kit.broker).interval_us == 333_334
    assert GCRA("x", 50, per=1, on=kit.broker).interval_us == 20_000


async def test_waiters_further_back_wait_one_interval_more_each(kit: LimitKit) -> None:
    g = gcra(kit, burst=1)
    first = await g.try_acquire()
    replies = [await g.attempt(waiter=f"w{i}") for i in range(3)]
    assert not any(replies)
    due = first.redis_time_us + T_US
    assert [r.retry_after_s for r in replies] == [
        -(-(due + i * T_US - r.redis_time_us) // 1000) / 1000 for i, r in enumerate(replies)
    ]
