"""The dead script: dead-letter a leased job, record its failure, trim old dead letters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.scriptkit import PAYLOAD, Kit, open_kit


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


ERROR = b'{"type":"ValueError","message":"boom","traceback":""}'
RESULT = b'{"s":"dead","n":3,"t":"tests.task","e":{"type":"ValueError"}}'
DAY_MS = 86_400_000


async def _dead(
    kit: Kit,
    job_id: str,
    token: str = "w1:1",
    *,
    result_ttl_ms: int = 60_000,
    max_dead: int = 1_000,
    max_age_ms: int = DAY_MS,
) -> bool:
    return await kit.scripts.dead(
        kit.k, job_id, token, ERROR, RESULT, result_ttl_ms, max_dead, max_age_ms
    )


async def _add_old_dead(kit: Kit, job_id: str, died_at_ms: int) -> None:
    """A dead letter from earlier, with everything a dead job keeps."""
    k = kit.k
    await kit.r.hset(k.jobs, job_id, b"1|" + PAYLOAD)
    await kit.r.hset(k.attempts, job_id, 3)
    await kit.r.hset(k.state, job_id, b"cp")
    await kit.r.hset(k.errors, job_id, ERROR)
    await kit.r.zadd(k.dead, {job_id: died_at_ms})


async def _kept_fields(kit: Kit, job_id: str) -> list[str]:
    k = kit.k
    names = {"jobs": k.jobs, "attempts": k.attempts, "state": k.state, "errors": k.errors}
    return [name for name, key in names.items() if await kit.r.hexists(key, job_id)]


async def test_dead_letters_the_job_with_its_error_and_result(kit: Kit) -> None:
    await kit.lease("a")
    await kit.r.hset(kit.k.state, "a", b"cp")
    await kit.enqueue("b")

    before = await kit.now_ms()
    assert await _dead(kit, "a") is True
    after = await kit.now_ms()

    died_at = (await kit.zset(kit.k.dead))["a"]
    assert before <= died_at <= after
    assert await kit.zset(kit.k.active) == {}
    assert await kit.hash(kit.k.leases) == {}
    assert await kit.hash(kit.k.errors) == {"a": ERROR}
    # the record, attempts and checkpoint stay, so the job can be revived
    assert await _kept_fields(kit, "a") == ["jobs", "attempts", "state", "errors"]
    assert await kit.ready() == ["b"]
    assert await kit.zset(kit.k.scheduled) == {}
    assert await kit.r.get(kit.k.result("a")) == b"%d|%s" % (died_at, RESULT)
    assert 0 < await kit.r.pttl(kit.k.result("a")) <= 60_000
    assert await kit.r.lrange(kit.k.done("a"), 0, -1) == [b"1"]
    assert 0 < await kit.r.pttl(kit.k.done("a")) <= 10_000
    assert await kit.wake_tokens() == 0


async def test_result_ttl_0_keeps_no_result_but_still_wakes_waiters(kit: Kit) -> None:
    await kit.lease("a")
    assert await _dead(kit, "a", result_ttl_ms=0) is True
    assert "a" in await kit.zset(kit.k.dead)
    assert await kit.r.exists(kit.k.result("a")) == 0
    assert await kit.r.llen(kit.k.done("a")) == 1


@pytest.mark.parametrize("token", ["w2:1", ""], ids=["other-worker", "empty"])
async def test_stale_token_returns_0_and_changes_nothing(kit: Kit, token: str) -> None:
    now = await kit.now_ms()
    await _add_old_dead(kit, "ancient", now - 10 * DAY_MS)  # would be trimmed by a real dead
    await kit.lease("a")
    before = await kit.snapshot()
    assert await _dead(kit, "a", token, max_dead=0, max_age_ms=1) is False
    assert await kit.snapshot() == before


async def test_dead_of_a_job_that_is_not_leased_changes_nothing(kit: Kit) -> None:
    await kit.enqueue("a")
    before = await kit.snapshot()
    assert await _dead(kit, "a") is False
    assert await kit.snapshot() == before


async def test_trims_the_oldest_dead_letters_beyond_the_count(kit: Kit) -> None:
    now = await kit.now_ms()
    for n, job_id in enumerate(["old1", "old2", "old3", "old4"]):
        await _add_old_dead(kit, job_id, now - 10_000 + n)
    await kit.lease("a")
    await kit.r.hset(kit.k.state, "a", b"cp")

    assert await _dead(kit, "a", max_dead=3) is True

    assert list(await kit.zset(kit.k.dead)) == ["old3", "old4", "a"]
    for gone in ("old1", "old2"):
        assert await _kept_fields(kit, gone) == []
    for kept in ("old3", "old4", "a"):
        assert await _kept_fields(kit, kept) == ["jobs", "attempts", "state", "errors"]


async def test_trims_dead_letters_older_than_the_max_age(kit: Kit) -> None:
    now = await kit.now_ms()
    await _add_old_dead(kit, "expired", now - 2 * DAY_MS)
    await _add_old_dead(kit, "recent", now - DAY_MS // 2)
    await kit.lease("a")
    await kit.r.hset(kit.k.state, "a", b"cp")

    assert await _dead(kit, "a", max_age_ms=DAY_MS) is True

    assert list(await kit.zset(kit.k.dead)) == ["recent", "a"]
    assert await _kept_fields(kit, "expired") == []
    assert await _kept_fields(kit, "recent") == ["jobs", "attempts", "state", "errors"]


async def test_dead_max_0_keeps_no_dead_letter_but_records_the_failure(kit: Kit) -> None:
    await kit.lease("a")
    assert await _dead(kit, "a", max_dead=0) is True
    assert await kit.zset(kit.k.dead) == {}
    assert await _kept_fields(kit, "a") == []
    assert (await kit.get(kit.k.result("a"))).endswith(b"|" + RESULT)


async def test_second_dead_of_the_same_lease_is_refused(kit: Kit) -> None:
    await kit.lease("a")
    assert await _dead(kit, "a") is True
    before = await kit.snapshot()
    assert await _dead(kit, "a") is False
    assert await kit.snapshot() == before


async def test_a_dead_batch_child_appends_failed_to_the_outbox(kit: Kit) -> None:
    await kit.lease("a", "b")
    ok = await kit.scripts.dead(
        kit.k, "a", "w1:1", ERROR, RESULT, 60_000, 1_000, DAY_MS, batch="batch-1"
    )
    assert ok is True
    assert await _dead(kit, "b") is True  # not a batch child
    assert await kit.r.lrange(kit.k.batch_outbox, 0, -1) == [b"batch-1|a|failed"]


async def test_a_refused_dead_letter_appends_nothing_to_the_outbox(kit: Kit) -> None:
    await kit.lease("a")
    ok = await kit.scripts.dead(
        kit.k, "a", "w2:1", ERROR, RESULT, 60_000, 1_000, DAY_MS, batch="batch-1"
    )
    assert ok is False
    assert await kit.r.exists(kit.k.batch_outbox) == 0
