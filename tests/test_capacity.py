"""Slot accounting (aioworker.capacity.Capacity), without Redis."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from aioworker.capacity import Capacity


async def settle() -> None:
    """Let every task that was woken run up to its next wait."""
    for _ in range(5):
        await asyncio.sleep(0)


def waiter(cap: Capacity, queue: str, most: int) -> asyncio.Task[int]:
    return asyncio.create_task(cap.acquire(queue, most), name=f"acquire:{queue}")


async def test_acquire_takes_up_to_the_queue_limit() -> None:
    cap = Capacity({"a": 3})
    assert cap.free("a") == 3
    assert await cap.acquire("a", 10) == 3
    assert cap.free("a") == 0
    assert cap.busy == 3
    assert cap.in_use == {"a": 3}
    cap.release("a", 2)
    assert await cap.acquire("a", 1) == 1
    assert cap.busy == 2


async def test_a_full_queue_waits_until_a_slot_is_released() -> None:
    cap = Capacity({"a": 2})
    assert await cap.acquire("a", 2) == 2
    t = waiter(cap, "a", 5)
    await settle()
    assert not t.done()
    cap.release("a", 1)
    assert await asyncio.wait_for(t, 1) == 1
    assert cap.busy == 2


async def test_one_full_queue_never_holds_up_another() -> None:
    cap = Capacity({"a": 1, "b": 2})
    assert await cap.acquire("a", 1) == 1
    blocked = waiter(cap, "a", 1)
    await settle()
    # b still has its own slots, even while a's fetcher waits
    assert await asyncio.wait_for(cap.acquire("b", 5), 1) == 2
    assert not blocked.done()
    cap.release("a", 1)
    assert await asyncio.wait_for(blocked, 1) == 1
    assert cap.in_use == {"a": 1, "b": 2}


async def test_total_cap_is_shared_by_all_queues() -> None:
    cap = Capacity({"a": 5, "b": 5}, total=3)
    assert await cap.acquire("a", 10) == 3
    assert cap.free("b") == 0
    t = waiter(cap, "b", 10)
    await settle()
    assert not t.done()
    cap.release("a", 1)
    assert await asyncio.wait_for(t, 1) == 1
    assert cap.busy == 3
    assert cap.in_use == {"a": 2, "b": 1}


async def test_queue_at_its_own_limit_does_not_take_total_slots() -> None:
    cap = Capacity({"a": 1, "b": 5}, total=3)
    assert await cap.acquire("a", 5) == 1
    blocked = waiter(cap, "a", 5)
    await settle()
    assert await asyncio.wait_for(cap.acquire("b", 5), 1) == 2
    assert not blocked.done()
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    assert cap.busy == 3


async def test_strict_priority_serves_the_first_listed_queue_first() -> None:
    cap = Capacity({"critical": 5, "default": 5}, total=1)
    assert await cap.acquire("critical", 1) == 1
    low = waiter(cap, "default", 1)  # waiting longer...
    await settle()
    high = waiter(cap, "critical", 1)
    await settle()
    cap.release("critical", 1)
    await settle()
    assert high.done() and high.result() == 1  # ...still served second
    assert not low.done()
    cap.release("critical", 1)
    assert await asyncio.wait_for(low, 1) == 1


async def test_strict_priority_gives_the_first_queue_all_it_asks_for() -> None:
    cap = Capacity({"critical": 10, "default": 10}, total=4)
    assert await cap.acquire("default", 4) == 4
    high = waiter(cap, "critical", 3)
    low = waiter(cap, "default", 10)
    await settle()
    cap.release("default", 4)
    await settle()
    assert high.result() == 3
    assert low.result() == 1
    assert cap.busy == 4


async def test_weights_share_slots_three_to_one() -> None:
    cap = Capacity({"high": 100, "low": 100}, total=1, weights={"high": 3, "low": 1})
    holder = "high"
    assert await cap.acquire(holder, 1) == 1
    waiting = {q: waiter(cap, q, 1) for q in ("high", "low")}
    order: list[str] = []
    for _ in range(40):
        await settle()
        cap.release(holder, 1)
        await settle()
        done = [q for q, t in waiting.items() if t.done()]
        assert len(done) == 1, done
        holder = done[0]
        assert waiting[holder].result() == 1
        order.append(holder)
        waiting[holder] = waiter(cap, holder, 1)
    for t in waiting.values():
        t.cancel()
    await asyncio.gather(*waiting.values(), return_exceptions=True)

    assert Counter(order) == {"high": 30, "low": 10}
    for start in range(0, 40, 4):
        assert Counter(order[start : start + 4]) == {"high": 3, "low": 1}, order
    assert cap.busy == 1


async def test_weighted_queue_alone_gets_every_free_slot() -> None:
    cap = Capacity({"high": 10, "low": 10}, total=3, weights={"high": 3, "low": 1})
    assert await cap.acquire("high", 3) == 3
    low = waiter(cap, "low", 10)
    await settle()
    cap.release("high", 3)
    await settle()
    assert low.result() == 3


async def test_cancelled_waiter_leaks_no_slot() -> None:
    cap = Capacity({"a": 1})
    assert await cap.acquire("a", 1) == 1
    t = waiter(cap, "a", 1)
    await settle()
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    cap.release("a", 1)
    assert cap.busy == 0
    assert await asyncio.wait_for(cap.acquire("a", 1), 1) == 1


async def test_waiter_cancelled_after_its_grant_gives_the_slots_back() -> None:
    cap = Capacity({"a": 2, "b": 2}, total=2)
    assert await cap.acquire("a", 2) == 2
    t = waiter(cap, "a", 2)
    other = waiter(cap, "b", 2)
    await settle()
    cap.release("a", 2)  # granted to t (first listed), which has not resumed yet
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    # the slots t was granted went back, and on to the other waiter
    assert await asyncio.wait_for(other, 1) == 2
    assert cap.in_use == {"a": 0, "b": 2}
    assert cap.busy == 2


async def test_release_of_nothing_changes_nothing() -> None:
    cap = Capacity({"a": 2}, total=2)
    assert await cap.acquire("a", 1) == 1
    cap.release("a", 0)
    cap.release("a", -3)
    assert cap.busy == 1
    assert cap.free("a") == 1


def test_limits_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Capacity({"a": 0})
    with pytest.raises(ValueError, match="at least 1"):
        Capacity({"a": 1}, total=0)


async def test_close_wakes_every_waiter_with_no_slot_at_once() -> None:
    cap = Capacity({"a": 1, "b": 1}, total=1)
    assert await cap.acquire("a", 5) == 1
    waiting = [waiter(cap, "a", 5), waiter(cap, "b", 5)]
    await settle()
    assert not any(t.done() for t in waiting)
    cap.close()
    await settle()
    assert [t.result() for t in waiting] == [0, 0]
    assert await cap.acquire("b", 5) == 0  # closed: no more slots handed out
    cap.release("a", 1)
    assert cap.busy == 0
