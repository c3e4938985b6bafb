"""The complete script (batched ack): a finished job leaves only its result behind."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.scriptkit import Kit, open_kit


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


async def _traces(kit: Kit, job_id: str) -> list[str]:
    """Names of the queue structures that still mention the job."""
    k = kit.k
    found = []
    if job_id in await kit.ready():
        found.append("ready")
    for name, key in (("scheduled", k.scheduled), ("active", k.active), ("dead", k.dead)):
        if await kit.r.zscore(key, job_id) is not None:
            found.append(name)
    for name, key in (
        ("jobs", k.jobs),
        ("attempts", k.attempts),
        ("leases", k.leases),
        ("state", k.state),
        ("errors", k.errors),
    ):
        if await kit.r.hexists(key, job_id):
            found.append(name)
    return found


async def test_complete_removes_every_trace_and_keeps_the_result(kit: Kit) -> None:
    await kit.lease("a")
    await kit.r.hset(kit.k.state, "a", b"cp")
    await kit.r.hset(kit.k.errors, "a", b'{"type":"Earlier"}')

    before = await kit.now_ms()
    assert await kit.scripts.complete(kit.k, 60_000, [("a", "w1:1", b'{"v":42}')]) == [True]
    after = await kit.now_ms()

    assert await _traces(kit, "a") == []
    stamp, sep, body = (await kit.get(kit.k.result("a"))).partition(b"|")
    assert sep == b"|" and body == b'{"v":42}'
    assert before <= int(stamp) <= after
    assert 0 < await kit.r.pttl(kit.k.result("a")) <= 60_000
    # the done marker wakes result waiters and expires by itself
    assert await kit.r.lrange(kit.k.done("a"), 0, -1) == [b"1"]
    assert 0 < await kit.r.pttl(kit.k.done("a")) <= 10_000


async def test_result_ttl_0_keeps_no_result_but_still_wakes_waiters(kit: Kit) -> None:
    await kit.lease("a")
    assert await kit.scripts.complete(kit.k, 0, [("a", "w1:1", b"1")]) == [True]
    assert await _traces(kit, "a") == []
    assert await kit.r.exists(kit.k.result("a")) == 0
    assert await kit.r.llen(kit.k.done("a")) == 1


@pytest.mark.parametrize("token", ["w2:1", ""], ids=["other-worker", "empty"])
async def test_stale_token_returns_0_and_changes_nothing(kit: Kit, token: str) -> None:
    await kit.lease("a")
    before = await kit.snapshot()
    assert await kit.scripts.complete(kit.k, 60_000, [("a", token, b"1")]) == [False]
    assert await kit.snapshot() == before


async def test_a_job_that_is_not_leased_cannot_be_completed(kit: Kit) -> None:
    await kit.enqueue("a")
    before = await kit.snapshot()
    assert await kit.scripts.complete(kit.k, 60_000, [("a", "w1:1", b"1")]) == [False]
    assert await kit.snapshot() == before


async def test_second_complete_of_the_same_lease_is_refused(kit: Kit) -> None:
    await kit.lease("a")
    assert await kit.scripts.complete(kit.k, 60_000, [("a", "w1:1", b'"first"')]) == [True]
    assert await kit.scripts.complete(kit.k, 60_000, [("a", "w1:1", b'"second"')]) == [False]
    assert (await kit.get(kit.k.result("a"))).endswith(b'|"first"')
    assert await kit.r.llen(kit.k.done("a")) == 1


async def test_batch_reports_each_job_and_touches_only_the_ones_it_owns(kit: Kit) -> None:
    await kit.lease("a", "b", "c", token="w1:1")
    await kit.lease("d", token="w2:1")
    d_before = {
        "active": await kit.r.zscore(kit.k.active, "d"),
        "lease": await kit.r.hget(kit.k.leases, "d"),
    }

    flags = await kit.scripts.complete(
        kit.k,
        60_000,
        [("a", "w1:1", b'"A"'), ("d", "w1:1", b'"D"'), ("c", "w1:1", b'"C"')],
    )

    assert flags == [True, False, True]
    assert await _traces(kit, "a") == []
    assert await _traces(kit, "c") == []
    assert await _traces(kit, "b") == ["active", "jobs", "attempts", "leases"]
    assert await _traces(kit, "d") == ["active", "jobs", "attempts", "leases"]
    assert {
        "active": await kit.r.zscore(kit.k.active, "d"),
        "lease": await kit.r.hget(kit.k.leases, "d"),
    } == d_before
    assert (await kit.get(kit.k.result("a"))).endswith(b'|"A"')
    assert (await kit.get(kit.k.result("c"))).endswith(b'|"C"')
    assert await kit.r.exists(kit.k.result("d"), kit.k.done("d"), kit.k.result("b")) == 0


async def test_a_batch_child_appends_its_outcome_to_the_outbox_with_the_ack(kit: Kit) -> None:
    await kit.lease("a", "b", "c")
    flags = await kit.scripts.complete(
        kit.k,
        60_000,
        [("a", "w1:1", b"1", "batch-1"), ("b", "w1:1", b"2"), ("c", "w1:1", b"3", "batch-2")],
    )
    assert flags == [True, True, True]
    assert await kit.r.lrange(kit.k.batch_outbox, 0, -1) == [b"batch-1|a|ok", b"batch-2|c|ok"]
    for job_id in ("a", "b", "c"):
        assert await _traces(kit, job_id) == []


async def test_a_refused_ack_appends_nothing_to_the_outbox(kit: Kit) -> None:
    await kit.lease("a")
    assert await kit.scripts.complete(kit.k, 60_000, [("a", "w2:1", b"1", "batch-1")]) == [False]
    assert await kit.r.exists(kit.k.batch_outbox) == 0
