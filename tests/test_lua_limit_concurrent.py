"""The Concurrent limiter's scripts: limit_concurrent (acquire), limit_release, limit_extend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aioworker.limits import Concurrent
from tests.limitkit import LimitKit, limit_url, open_limit_kit

__all__ = ("limit_url",)

LEASE_MS = 30_000


@pytest.fixture
async def kit(limit_url: str, prefix: str) -> AsyncIterator[LimitKit]:
    async with open_limit_kit(limit_url, prefix) as k:
        yield k


def concurrent(kit: LimitKit, limit: int = 2) -> Concurrent:
    return Concurrent("stripe", limit, lease=30, on=kit.broker, prefix=kit.prefix)


async def test_admits_limit_holders_each_under_a_lease(kit: LimitKit) -> None:
    c = concurrent(kit)
    a = await c.attempt(token="a")
    b = await c.attempt(token="b")
    assert a and b
    assert (a.token, b.token) == ("a", "b")
    assert await kit.zset(c.keys.holders) == {
        "a": a.redis_time_us // 1000 + LEASE_MS,
        "b": b.redis_time_us // 1000 + LEASE_MS,
    }
    assert await kit.hash(c.keys.since) == {
        "a": str(a.redis_time_us // 1000),
        "b": str(b.redis_time_us // 1000),
    }
    before = await kit.state(c)

    refused = await c.attempt(token="c")

    assert not refused
    assert refused.token == ""
    assert await kit.state(c) == before
    assert LEASE_MS - 10_000 < await kit.pttl(c.keys.holders) <= LEASE_MS
    assert LEASE_MS < await kit.pttl(c.keys.since) <= 60_000


async def test_acquiring_again_with_a_held_token_renews_it_without_a_new_slot(
    kit: LimitKit,
) -> None:
    c = concurrent(kit)
    assert await c.attempt(token="a")
    assert await c.attempt(token="b")
    await kit.raw.zadd(c.keys.holders, {"a": 1})  # about to lapse, but not yet taken back
    deadline = (await kit.now_us()) // 1000 + LEASE_MS
    await kit.raw.zadd(c.keys.holders, {"a": deadline - LEASE_MS + 5_000})

    again = await c.attempt(token="a")

    assert again
    holders = await kit.zset(c.keys.holders)
    assert set(holders) == {"a", "b"}
    assert holders["a"] >= deadline
    assert not await c.attempt(token="c")


async def test_a_lapsed_hold_is_taken_back_by_the_next_acquire(kit: LimitKit) -> None:
    c = concurrent(kit)
    assert await c.attempt(token="crashed")
    assert await c.attempt(token="alive")
    now_ms = (await kit.now_us()) // 1000
    await kit.raw.zadd(c.keys.holders, {"crashed": now_ms - 1})

    assert await c.attempt(token="new")

    assert set(await kit.zset(c.keys.holders)) == {"alive", "new"}
    assert set(await kit.hash(c.keys.since)) == {"alive", "new"}
    # the crashed holder learns it on its next renewal, and its release frees nothing
    assert await c.extend(["crashed", "alive"]) == ["crashed"]
    assert await c.release("crashed") is False
    assert await kit.raw.llen(c.keys.wake) == 0


async def test_release_frees_the_slot_once_and_wakes_one_waiter(kit: LimitKit) -> None:
    c = concurrent(kit)
    a = await c.attempt(token="a")
    assert await c.attempt(token="b")
    # held for 2 s, as far as the script can tell
    await kit.raw.hset(c.keys.since, "a", str(a.redis_time_us // 1000 - 2_000))

    assert await c.release("a") is True
    assert await c.release("a") is False

    assert set(await kit.zset(c.keys.holders)) == {"b"}
    since = await kit.hash(c.keys.since)
    assert set(since) == {"b", "~avg"}
    assert 2_000 <= float(since["~avg"]) < 5_000
    assert await kit.raw.lrange(c.keys.wake, 0, -1) == [b"1"]
    assert 0 < await kit.pttl(c.keys.wake) <= 10_000
    assert await c.attempt(token="c")


async def test_the_mean_hold_moves_a_fifth_of_the_way_to_each_new_hold(kit: LimitKit) -> None:
    c = concurrent(kit)
    await kit.raw.hset(c.keys.since, "~avg", "1000")
    held = await c.attempt(token="a")
    await kit.raw.hset(c.keys.since, "a", str(held.redis_time_us // 1000 - 6_000))
    assert await c.release("a")
    # 1000 + (6000 - 1000) / 5, plus a fifth of the time the test itself took
    assert 2_000 <= float((await kit.hash(c.keys.since))["~avg"]) < 2_500


async def test_wake_tokens_are_capped_at_the_limit(kit: LimitKit) -> None:
    c = concurrent(kit, limit=3)
    for round_ in range(3):
        for i in range(3):
            assert await c.attempt(token=f"{round_}.{i}")
        for i in range(3):
            assert await c.release(f"{round_}.{i}")
    assert await kit.raw.llen(c.keys.wake) == 3


async def test_refusals_estimate_the_wait_from_the_mean_hold(kit: LimitKit) -> None:
    c = concurrent(kit)
    assert await c.attempt(token="a")
    assert await c.attempt(token="b")
    await kit.raw.hset(c.keys.since, "~avg", "1000")
    # two holders of a 1 s mean: one frees a slot every 0.5 s or so
    replies = [await c.attempt(token=f"t{i}", waiter=f"w{i}") for i in range(3)]
    assert [r.retry_after_s for r in replies] == [0.5, 1.0, 1.5]
    assert [r.admitted for r in replies] == [False] * 3


async def test_extend_renews_held_tokens_and_reports_the_rest(kit: LimitKit) -> None:
    c = concurrent(kit)
    a = await c.attempt(token="a")
    assert a
    await kit.raw.zadd(c.keys.holders, {"a": a.redis_time_us // 1000 + 100})
    before = await kit.now_us()

    lost = await c.extend(["a", "gone"], lease=60)

    assert lost == ["gone"]
    deadline = (await kit.zset(c.keys.holders))["a"]
    assert before // 1000 + 60_000 <= deadline <= (await kit.now_us()) // 1000 + 60_000
    assert await kit.pttl(c.keys.holders) > 30_000
    state = await kit.state(c)
    assert await c.extend(["x", "y"]) == ["x", "y"]
    assert await kit.state(c) == state


async def test_release_names_the_oldest_waiters_one_per_free_slot(kit: LimitKit) -> None:
    c = concurrent(kit, limit=3)
    for token in ("a", "b", "c"):
        assert await c.attempt(token=token)
    for waiter in ("q j1", "q j2", "q j3"):
        assert not await c.attempt(waiter=waiter)

    assert await c.release_to_waiters("a") == (True, ["q j1"])
    assert await c.release_to_waiters("b") == (True, ["q j1", "q j2"])
    assert await c.release_to_waiters("b") == (False, [])
    assert await c.attempt(token="d", waiter="q j1")
    assert await c.release_to_waiters("c") == (True, ["q j2", "q j3"])
