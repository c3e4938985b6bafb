"""The checkpoint script: only the lease holder may save a running job's state."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.scriptkit import Kit, open_kit


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


async def test_lease_holder_saves_and_overwrites_the_state(kit: Kit) -> None:
    await kit.lease("a")
    before = await kit.snapshot()

    assert await kit.scripts.checkpoint(kit.k, "a", "w1:1", b"step-1") is True
    assert await kit.hash(kit.k.state) == {"a": b"step-1"}
    assert await kit.scripts.checkpoint(kit.k, "a", "w1:1", b"step-2") is True
    assert await kit.hash(kit.k.state) == {"a": b"step-2"}

    # nothing but the state changed: the lease, the attempt and the queue are as they were
    after = await kit.snapshot()
    state_key = kit.k.state.encode()
    del after[state_key]
    assert after == before


@pytest.mark.parametrize("token", ["w2:1", ""], ids=["other-worker", "empty"])
async def test_stale_token_returns_0_and_keeps_the_saved_state(kit: Kit, token: str) -> None:
    await kit.lease("a")
    assert await kit.scripts.checkpoint(kit.k, "a", "w1:1", b"good")
    before = await kit.snapshot()
    assert await kit.scripts.checkpoint(kit.k, "a", token, b"bad") is False
    assert await kit.snapshot() == before


async def test_checkpoint_of_a_queued_job_is_refused(kit: Kit) -> None:
    await kit.enqueue("a")
    before = await kit.snapshot()
    assert await kit.scripts.checkpoint(kit.k, "a", "w1:1", b"cp") is False
    assert await kit.snapshot() == before


async def test_late_checkpoint_after_complete_leaves_no_state_behind(kit: Kit) -> None:
    await kit.lease("a")
    assert await kit.scripts.complete(kit.k, 60_000, [("a", "w1:1", b"1")]) == [True]
    before = await kit.snapshot()
    assert await kit.scripts.checkpoint(kit.k, "a", "w1:1", b"late") is False
    assert await kit.snapshot() == before
    assert await kit.hash(kit.k.state) == {}


async def test_old_holder_cannot_overwrite_the_new_holders_state(kit: Kit) -> None:
    await kit.lease("a", token="w1:1")
    await kit.r.zadd(kit.k.active, {"a": await kit.now_ms() - 1})
    assert [j.id for j in (await kit.fetch(1, "w2:1")).jobs] == ["a"]
    assert await kit.scripts.checkpoint(kit.k, "a", "w2:1", b"new-owner") is True

    assert await kit.scripts.checkpoint(kit.k, "a", "w1:1", b"old-owner") is False
    assert await kit.hash(kit.k.state) == {"a": b"new-owner"}
