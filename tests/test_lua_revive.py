"""The revive script: dead letters go back to the queue with a fresh attempt count."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.scriptkit import Kit, open_kit


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


ERROR = b'{"type":"ValueError","message":"boom","traceback":""}'


async def _kill(kit: Kit, *ids: str) -> None:
    """Lease ``ids`` and dead-letter each, with a stored dead result."""
    await kit.lease(*ids, token="w0:1")
    for job_id in ids:
        assert await kit.scripts.dead(
            kit.k, job_id, "w0:1", ERROR, b'{"s":"dead"}', 60_000, 1_000, 86_400_000
        )
    await kit.r.delete(kit.k.wake, *(kit.k.done(i) for i in ids))


async def test_revive_requeues_with_fresh_attempts_and_forgets_the_failure(kit: Kit) -> None:
    await _kill(kit, "a")
    await kit.r.hset(kit.k.attempts, "a", 4)
    await kit.enqueue("b")
    record = (await kit.hash(kit.k.jobs))["a"]

    assert await kit.scripts.revive(kit.k, ["a"]) == 1

    assert await kit.zset(kit.k.dead) == {}
    assert await kit.ready() == ["b", "a"]
    assert "a" not in await kit.hash(kit.k.attempts)
    assert await kit.hash(kit.k.errors) == {}
    # the stored dead result would otherwise shadow the rerun in status and result()
    assert await kit.r.exists(kit.k.result("a")) == 0
    assert (await kit.hash(kit.k.jobs))["a"] == record
    assert await kit.wake_tokens() == 1

    reply = await kit.fetch(2, "w1:1")
    assert [(j.id, j.attempt) for j in reply.jobs] == [("b", 1), ("a", 1)]


async def test_revive_of_many_keeps_the_given_order_and_counts_only_dead_ones(kit: Kit) -> None:
    await _kill(kit, "d1", "d2", "d3")
    await kit.enqueue("queued")

    moved = await kit.scripts.revive(kit.k, ["d3", "queued", "unknown", "d1"])

    assert moved == 2
    assert await kit.ready() == ["queued", "d3", "d1"]
    assert list(await kit.zset(kit.k.dead)) == ["d2"]
    assert await kit.r.exists(kit.k.result("d2")) == 1
    assert await kit.r.exists(kit.k.result("d1"), kit.k.result("d3")) == 0
    assert await kit.wake_tokens() == 1


@pytest.mark.parametrize("where", ["queued", "active", "unknown"])
async def test_ids_not_dead_are_skipped_and_nothing_changes(kit: Kit, where: str) -> None:
    if where == "queued":
        await kit.enqueue("a")
    elif where == "active":
        await kit.lease("a")
        await kit.r.hset(kit.k.errors, "a", ERROR)
    before = await kit.snapshot()

    assert await kit.scripts.revive(kit.k, ["a"]) == 0

    assert await kit.snapshot() == before


async def test_reviving_twice_queues_the_job_once(kit: Kit) -> None:
    await _kill(kit, "a")
    assert await kit.scripts.revive(kit.k, ["a"]) == 1
    assert await kit.scripts.revive(kit.k, ["a"]) == 0
    assert await kit.ready() == ["a"]


async def test_a_dead_entry_without_its_record_is_dropped_not_queued(kit: Kit) -> None:
    await _kill(kit, "a")
    await kit.r.hdel(kit.k.jobs, "a")

    assert await kit.scripts.revive(kit.k, ["a"]) == 0

    assert await kit.zset(kit.k.dead) == {}
    assert await kit.ready() == []
    assert await kit.wake_tokens() == 0


async def test_revive_of_no_ids_changes_nothing(kit: Kit) -> None:
    await _kill(kit, "a")
    before = await kit.snapshot()
    assert await kit.scripts.revive(kit.k, []) == 0
    assert await kit.snapshot() == before


async def test_revive_drops_the_done_marker_so_result_waiters_block_again(kit: Kit) -> None:
    await kit.lease("a", token="w0:1")
    assert await kit.scripts.dead(kit.k, "a", "w0:1", ERROR, b"{}", 60_000, 1_000, 86_400_000)
    assert await kit.r.llen(kit.k.done("a")) == 1

    assert await kit.scripts.revive(kit.k, ["a"]) == 1

    # a marker left behind would wake every waiter at once until it expired: a busy loop
    assert await kit.r.exists(kit.k.done("a")) == 0
