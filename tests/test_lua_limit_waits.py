"""The waiters' bookkeeping every limiter script shares: place in line and max_wait clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from aioworker.limits import GCRA, Bucket, Concurrent, Limiter, Points, Window
from tests.limitkit import LimitKit, limit_url, open_limit_kit, slots_of

__all__ = ("limit_url",)

Make = Callable[[LimitKit], Limiter]

KINDS: dict[str, Make] = {
    "concurrent": lambda k: Concurrent("x", 1, on=k.broker, prefix=k.prefix),
    "bucket": lambda k: Bucket("x", 1, per=3600, on=k.broker, prefix=k.prefix),
    "window": lambda k: Window("x", 1, per=3600, on=k.broker, prefix=k.prefix),
    "gcra": lambda k: GCRA("x", 1, per=3600, on=k.broker, prefix=k.prefix),
    "points": lambda k: Points("x", 1, per=3600, on=k.broker, prefix=k.prefix),
}


@pytest.fixture
async def kit(limit_url: str, prefix: str) -> AsyncIterator[LimitKit]:
    async with open_limit_kit(limit_url, prefix) as k:
        yield k


@pytest.fixture(params=list(KINDS))
def make(request: pytest.FixtureRequest) -> Make:
    return KINDS[request.param]


async def test_a_refused_waiter_keeps_its_first_refusal_time(kit: LimitKit, make: Make) -> None:
    lim = make(kit)
    assert await lim.attempt(token="holder")
    first = await lim.attempt(waiter="job-1", forget_ms=90_000)
    assert not first
    assert first.waited_s == 0
    waits = await kit.zset(lim.keys.waits)
    assert waits == {"job-1": first.redis_time_us // 1000}
    assert 0 < await kit.pttl(lim.keys.waits) <= 90_000
    # refused again later: timed from the first refusal
    await kit.raw.zadd(lim.keys.waits, {"job-1": waits["job-1"] - 4_000})
    again = await lim.attempt(waiter="job-1", max_wait_ms=5_000)
    assert not again
    assert 4.0 <= again.waited_s < 6.0
    assert await kit.zset(lim.keys.waits) == {"job-1": waits["job-1"] - 4_000}


async def test_reaching_max_wait_restarts_the_waiters_clock(kit: LimitKit, make: Make) -> None:
    lim = make(kit)
    assert await lim.attempt(token="holder")
    assert not await lim.attempt(waiter="job-1")
    now_ms = (await kit.now_us()) // 1000
    await kit.raw.zadd(lim.keys.waits, {"job-1": now_ms - 5_000})

    late = await lim.attempt(waiter="job-1", max_wait_ms=5_000)

    assert not late
    assert late.waited_s >= 5.0
    assert await kit.zset(lim.keys.waits) == {}
    fresh = await lim.attempt(waiter="job-1", max_wait_ms=5_000)
    assert fresh.waited_s == 0


async def test_admission_takes_the_waiter_out_of_line(kit: LimitKit, make: Make) -> None:
    lim = make(kit)
    assert await lim.attempt(token="holder")
    assert not await lim.attempt(waiter="job-1")
    assert "job-1" in await kit.zset(lim.keys.waits)
    await kit.raw.delete(
        lim.keys.holders, lim.keys.bucket, lim.keys.log, lim.keys.tat, lim.keys.points
    )

    assert await lim.attempt(waiter="job-1", token="t1")

    assert "job-1" not in await kit.zset(lim.keys.waits)


async def test_waiters_not_heard_from_are_forgotten(kit: LimitKit, make: Make) -> None:
    lim = make(kit)
    assert await lim.attempt(token="holder")
    now_ms = (await kit.now_us()) // 1000
    await kit.raw.zadd(lim.keys.waits, {"stale": now_ms - 61_000, "recent": now_ms - 1_000})

    reply = await lim.attempt(waiter="job-1", forget_ms=60_000)

    assert not reply
    assert set(await kit.zset(lim.keys.waits)) == {"recent", "job-1"}


async def test_untracked_calls_leave_no_waiter(kit: LimitKit, make: Make) -> None:
    lim = make(kit)
    assert await lim.try_acquire()
    assert not await lim.try_acquire()
    assert await kit.raw.exists(lim.keys.waits) == 0


def test_all_keys_of_a_limiter_name_share_one_slot_and_names_spread() -> None:
    c = Concurrent("erp", 1, on="redis://127.0.0.1:1/0", prefix="p")
    names = [c.key(f"tenant-{i}") for i in range(50)]
    for lim in [c, *names]:
        k = lim.keys
        keys = [k.holders, k.since, k.wake, k.bucket, k.log, k.tat, k.points, k.waits]
        assert len(slots_of(keys)) == 1
        assert k.holders == f"p:{{limit:{lim.name}}}:holders"
    assert len(slots_of([lim.keys.holders for lim in names])) > 40
