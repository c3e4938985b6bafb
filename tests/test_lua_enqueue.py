"""The enqueue script: new jobs land ready or scheduled, an existing id is never touched."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.scriptkit import LEASE_MS, PAYLOAD, Kit, open_kit


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


async def test_new_job_is_ready_with_a_stamped_record_and_wakes_one_worker(kit: Kit) -> None:
    before = await kit.now_ms()
    assert await kit.scripts.enqueue(kit.k, [("a", PAYLOAD, 0, 0)]) == [True]
    after = await kit.now_ms()

    assert await kit.ready() == ["a"]
    assert await kit.zset(kit.k.scheduled) == {}
    stamp, sep, body = (await kit.hash(kit.k.jobs))["a"].partition(b"|")
    assert sep == b"|" and body == PAYLOAD
    assert before <= int(stamp) <= after
    assert await kit.wake_tokens() == 1
    # nothing counts as an attempt, a lease or a result yet
    assert await kit.hash(kit.k.attempts) == {}
    assert await kit.hash(kit.k.leases) == {}
    assert await kit.r.exists(kit.k.result("a"), kit.k.done("a")) == 0


async def test_ready_jobs_keep_enqueue_order_within_and_across_calls(kit: Kit) -> None:
    flags = await kit.scripts.enqueue(kit.k, [(i, PAYLOAD, 0, 0) for i in ("a", "b", "c")])
    assert flags == [True, True, True]
    assert await kit.scripts.enqueue(kit.k, [("d", PAYLOAD, 0, 0)]) == [True]
    assert await kit.ready() == ["a", "b", "c", "d"]


async def test_delayed_job_is_scheduled_relative_to_redis_time(kit: Kit) -> None:
    before = await kit.now_ms()
    assert await kit.scripts.enqueue(kit.k, [("a", PAYLOAD, 0, 5_000)]) == [True]
    after = await kit.now_ms()

    assert await kit.ready() == []
    score = (await kit.zset(kit.k.scheduled))["a"]
    assert before + 5_000 <= score <= after + 5_000
    assert "a" in await kit.hash(kit.k.jobs)
    # a delayed job wakes a worker too, so it can shorten its sleep to the new due time
    assert await kit.wake_tokens() == 1


async def test_job_at_a_future_time_is_scheduled_at_exactly_that_time(kit: Kit) -> None:
    at_ms = await kit.now_ms() + 3_600_000
    # at_ms wins over delay_ms when both are given
    assert await kit.scripts.enqueue(kit.k, [("a", PAYLOAD, at_ms, 10)]) == [True]
    assert await kit.zset(kit.k.scheduled) == {"a": at_ms}
    assert await kit.ready() == []


async def test_job_at_a_past_time_is_ready_at_once(kit: Kit) -> None:
    at_ms = await kit.now_ms() - 60_000
    assert await kit.scripts.enqueue(kit.k, [("a", PAYLOAD, at_ms, 0)]) == [True]
    assert await kit.ready() == ["a"]
    assert await kit.zset(kit.k.scheduled) == {}


@pytest.mark.parametrize("where", ["ready", "scheduled", "active", "dead"])
async def test_existing_id_returns_0_and_changes_nothing(kit: Kit, where: str) -> None:
    other_payload = b'{"t":"tests.other","a":[],"k":{}}'
    if where == "ready":
        await kit.enqueue("a")
    elif where == "scheduled":
        await kit.schedule("a", await kit.now_ms() + 60_000)
    else:
        await kit.lease("a")
        if where == "dead":
            ok = await kit.scripts.dead(kit.k, "a", "w1:1", b"{}", b"{}", 0, 100, LEASE_MS)
            assert ok
            await kit.r.delete(kit.k.wake, kit.k.done("a"))
    before = await kit.snapshot()

    for at_ms, delay_ms in ((0, 0), (0, 10_000)):
        assert await kit.scripts.enqueue(kit.k, [("a", other_payload, at_ms, delay_ms)]) == [False]

    assert await kit.snapshot() == before


async def test_id_with_only_a_result_left_is_not_enqueued_again(kit: Kit) -> None:
    # the job finished and its record is gone; its result must not be shadowed by a rerun
    await kit.r.set(kit.k.result("a"), b"1|{}", px=60_000)
    before = await kit.snapshot()

    assert await kit.scripts.enqueue(kit.k, [("a", PAYLOAD, 0, 0)]) == [False]

    assert await kit.snapshot() == before
    assert await kit.wake_tokens() == 0


async def test_batch_reports_each_job_and_a_repeated_id_is_created_once(kit: Kit) -> None:
    await kit.enqueue("old")
    flags = await kit.scripts.enqueue(
        kit.k,
        [
            ("a", PAYLOAD, 0, 0),
            ("old", PAYLOAD, 0, 0),
            ("a", b"second", 0, 0),
            ("b", PAYLOAD, 0, 0),
        ],
    )
    assert flags == [True, False, False, True]
    assert await kit.ready() == ["old", "a", "b"]
    jobs = await kit.hash(kit.k.jobs)
    assert jobs["a"].endswith(b"|" + PAYLOAD)
    assert await kit.wake_tokens() == 2


async def test_wake_tokens_are_one_per_new_job_up_to_16_and_the_list_is_capped(kit: Kit) -> None:
    assert (
        await kit.scripts.enqueue(kit.k, [(f"a{i}", PAYLOAD, 0, 0) for i in range(20)])
        == [True] * 20
    )
    assert await kit.wake_tokens() == 16
    for batch in range(4):
        await kit.scripts.enqueue(kit.k, [(f"b{batch}-{i}", PAYLOAD, 0, 0) for i in range(20)])
    # idle workers need only a few tokens: the list never grows past 64
    assert await kit.wake_tokens() == 64
    assert await kit.r.llen(kit.k.ready) == 100


async def test_nothing_created_pushes_no_wake_token(kit: Kit) -> None:
    await kit.enqueue("a")
    assert await kit.scripts.enqueue(kit.k, [("a", PAYLOAD, 0, 0)]) == [False]
    assert await kit.wake_tokens() == 0
