"""The retry script: a leased job goes back to its queue after a delay, fenced by its lease."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.scriptkit import Kit, open_kit


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


ERROR = b'{"type":"ValueError","message":"boom","traceback":""}'


async def test_retry_with_delay_schedules_the_job_relative_to_redis_time(kit: Kit) -> None:
    await kit.lease("a")
    await kit.enqueue("other")

    before = await kit.now_ms()
    assert await kit.scripts.retry(kit.k, "a", "w1:1", 7_000, ERROR) is True
    after = await kit.now_ms()

    score = (await kit.zset(kit.k.scheduled))["a"]
    assert before + 7_000 <= score <= after + 7_000
    assert await kit.ready() == ["other"]
    assert await kit.zset(kit.k.active) == {}
    assert await kit.hash(kit.k.leases) == {}
    assert await kit.hash(kit.k.errors) == {"a": ERROR}
    assert await kit.hash(kit.k.attempts) == {"a": b"1"}  # the failed run counted
    assert "a" in await kit.hash(kit.k.jobs)
    assert await kit.wake_tokens() == 1
    # a retry is not an outcome: no result and no done marker
    assert await kit.r.exists(kit.k.result("a"), kit.k.done("a")) == 0


async def test_retry_without_delay_goes_to_the_back_of_the_queue(kit: Kit) -> None:
    await kit.lease("a")
    await kit.enqueue("b", "c")

    assert await kit.scripts.retry(kit.k, "a", "w1:1", 0, ERROR) is True

    assert await kit.ready() == ["b", "c", "a"]
    assert await kit.zset(kit.k.scheduled) == {}
    # the next lease is the second attempt
    reply = await kit.fetch(3, "w2:1")
    assert [(j.id, j.attempt) for j in reply.jobs] == [("b", 1), ("c", 1), ("a", 2)]


async def test_empty_error_keeps_the_last_error(kit: Kit) -> None:
    await kit.lease("a")
    await kit.r.hset(kit.k.errors, "a", ERROR)
    assert await kit.scripts.retry(kit.k, "a", "w1:1", 0, b"") is True
    assert await kit.hash(kit.k.errors) == {"a": ERROR}


async def test_retry_that_does_not_count_gives_the_attempt_back(kit: Kit) -> None:
    await kit.lease("a")
    assert await kit.scripts.retry(kit.k, "a", "w1:1", 0, b"", count_attempt=False) is True
    assert await kit.hash(kit.k.attempts) == {"a": b"0"}
    (job,) = (await kit.fetch(1, "w2:1")).jobs
    assert job.attempt == 1


@pytest.mark.parametrize("token", ["w2:1", ""], ids=["other-worker", "empty"])
async def test_stale_token_returns_0_and_changes_nothing(kit: Kit, token: str) -> None:
    await kit.lease("a")
    await kit.enqueue("b")
    before = await kit.snapshot()
    for delay_ms in (0, 5_000):
        assert await kit.scripts.retry(kit.k, "a", token, delay_ms, ERROR) is False
        assert await kit.scripts.retry(kit.k, "a", token, delay_ms, ERROR, False) is False
    assert await kit.snapshot() == before


async def test_retry_of_a_job_that_is_not_leased_changes_nothing(kit: Kit) -> None:
    await kit.enqueue("a")
    before = await kit.snapshot()
    assert await kit.scripts.retry(kit.k, "a", "w1:1", 0, ERROR) is False
    assert await kit.snapshot() == before


async def test_second_retry_of_the_same_lease_is_refused(kit: Kit) -> None:
    await kit.lease("a")
    assert await kit.scripts.retry(kit.k, "a", "w1:1", 0, ERROR) is True
    before = await kit.snapshot()
    assert await kit.scripts.retry(kit.k, "a", "w1:1", 0, b'{"type":"Again"}') is False
    assert await kit.snapshot() == before
    assert await kit.ready() == ["a"]  # queued once, not twice
