"""The limit_promote script: jobs deferred by a limiter are brought forward to now."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.scriptkit import Kit, open_kit


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


async def promote(kit: Kit, *ids: str) -> int:
    return int(await kit.scripts.run("limit_promote", [kit.k.scheduled, kit.k.wake], ids))


async def test_deferred_jobs_become_due_now_and_an_idle_worker_is_woken(kit: Kit) -> None:
    now = await kit.now_ms()
    await kit.schedule("a", now + 60_000)
    await kit.schedule("b", now + 90_000)
    await kit.schedule("c", now + 30_000)

    assert await promote(kit, "a", "b") == 2

    after = await kit.now_ms()
    scheduled = await kit.zset(kit.k.scheduled)
    assert now <= scheduled["a"] <= after
    assert now <= scheduled["b"] <= after
    assert scheduled["c"] == now + 30_000
    assert await kit.wake_tokens() == 1
    reply = await kit.fetch(10, "w1:1")
    assert {j.id for j in reply.jobs} == {"a", "b"}


async def test_jobs_not_waiting_in_the_future_are_left_alone(kit: Kit) -> None:
    await kit.lease("running")
    now = await kit.now_ms()
    await kit.schedule("due", now - 1_000)
    await kit.enqueue("ready")
    before = await kit.snapshot()

    assert await promote(kit, "due", "ready", "running", "unknown") == 0

    assert await kit.snapshot() == before
