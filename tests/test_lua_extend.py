"""The extend script (heartbeat): renew held leases, report the ones that were lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.scriptkit import Kit, open_kit


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


async def test_extend_moves_every_held_deadline_to_now_plus_the_lease(kit: Kit) -> None:
    await kit.enqueue("a", "b")
    await kit.fetch(2, "w1:1", lease_ms=1_000)

    before = await kit.now_ms()
    lost = await kit.scripts.extend(kit.k, 30_000, [("a", "w1:1"), ("b", "w1:1")])
    after = await kit.now_ms()

    assert lost == []
    active = await kit.zset(kit.k.active)
    assert set(active) == {"a", "b"}
    assert active["a"] == active["b"]
    assert before + 30_000 <= active["a"] <= after + 30_000
    # renewing is not running: attempts and owners stay
    assert await kit.hash(kit.k.attempts) == {"a": b"1", "b": b"1"}
    assert await kit.hash(kit.k.leases) == {"a": b"w1:1", "b": b"w1:1"}


async def test_ids_held_by_another_token_are_reported_and_left_alone(kit: Kit) -> None:
    await kit.lease("a", token="w1:1")
    await kit.lease("b", token="w2:1")
    b_deadline = (await kit.zset(kit.k.active))["b"]

    lost = await kit.scripts.extend(kit.k, 30_000, [("a", "w1:1"), ("b", "w1:1")])

    assert lost == ["b"]
    assert (await kit.zset(kit.k.active))["b"] == b_deadline
    assert await kit.hash(kit.k.leases) == {"a": b"w1:1", "b": b"w2:1"}


async def test_finished_job_is_reported_lost_and_not_put_back_in_active(kit: Kit) -> None:
    await kit.lease("a", "b")
    assert await kit.scripts.complete(kit.k, 60_000, [("a", "w1:1", b"1")]) == [True]

    lost = await kit.scripts.extend(kit.k, 30_000, [("a", "w1:1"), ("b", "w1:1")])

    assert lost == ["a"]
    assert set(await kit.zset(kit.k.active)) == {"b"}
    assert set(await kit.hash(kit.k.leases)) == {"b"}


async def test_extend_of_nothing_changes_nothing(kit: Kit) -> None:
    await kit.lease("a")
    before = await kit.snapshot()
    assert await kit.scripts.extend(kit.k, 30_000, []) == []
    assert await kit.scripts.extend(kit.k, 30_000, [("a", "w2:1"), ("x", "w1:1")]) == ["a", "x"]
    assert await kit.snapshot() == before


async def test_a_renewed_lease_is_not_recovered_while_a_lapsed_one_is(kit: Kit) -> None:
    await kit.enqueue("kept", "lapsed")
    assert len((await kit.fetch(2, "w1:1", lease_ms=100)).jobs) == 2
    assert await kit.scripts.extend(kit.k, 30_000, [("kept", "w1:1")]) == []
    await asyncio.sleep(0.3)

    reply = await kit.fetch(0, "w2:1")

    assert reply.recovered == ["lapsed"]
    assert set(await kit.zset(kit.k.active)) == {"kept"}
    assert await kit.hash(kit.k.leases) == {"kept": b"w1:1"}
    # and the worker that lost it learns so on its next heartbeat
    assert await kit.scripts.extend(kit.k, 30_000, [("kept", "w1:1"), ("lapsed", "w1:1")]) == [
        "lapsed"
    ]


async def test_a_lapsed_lease_nobody_recovered_yet_can_still_be_renewed(kit: Kit) -> None:
    await kit.lease("a")
    await kit.r.zadd(kit.k.active, {"a": await kit.now_ms() - 1_000})

    before = await kit.now_ms()
    assert await kit.scripts.extend(kit.k, 30_000, [("a", "w1:1")]) == []

    assert (await kit.zset(kit.k.active))["a"] >= before + 30_000
    assert (await kit.fetch(0, "w2:1")).recovered == []
