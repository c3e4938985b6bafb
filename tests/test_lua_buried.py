"""The buried script: jobs fetch dead-lettered as corrupt get a result and a done marker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from redis.exceptions import ResponseError

from aioworker import JobContext, JobStatus
from aioworker.keys import QueueKeys
from aioworker.payload import loads
from tests.scriptkit import Kit, open_kit
from tests.worker_kit import MakeWorker, burst


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


async def _bury(kit: Kit, *ids: str) -> list[str]:
    """Enqueue ``ids`` with an attempt count that is not an integer, and fetch them."""
    for job_id in ids:
        await kit.enqueue(job_id)
        await kit.r.hset(kit.k.attempts, job_id, "two")
    reply = await kit.fetch(len(ids), "w0:1")
    assert reply.jobs == []
    return reply.buried


async def test_buried_jobs_get_a_dead_result_and_a_done_marker(kit: Kit) -> None:
    ids = await _bury(kit, "a", "b")
    assert sorted(ids) == ["a", "b"]

    assert await kit.scripts.buried(kit.k, ids, 60_000) == 2

    for job_id in ids:
        stamped = await kit.r.get(kit.k.result(job_id))
        assert isinstance(stamped, bytes)
        result = loads(stamped.split(b"|", 1)[1])
        assert result["s"] == "dead"
        assert result["e"]["message"] == "corrupt record: its attempt count is not an integer"
        assert await kit.r.lrange(kit.k.done(job_id), 0, -1) == [b"1"]
    assert sorted(await kit.zset(kit.k.dead)) == ["a", "b"]  # still dead letters, once


async def test_a_job_no_longer_dead_is_left_alone(kit: Kit) -> None:
    ids = await _bury(kit, "a")
    assert await kit.scripts.revive(kit.k, ids) == 1
    await kit.r.delete(kit.k.done("a"))

    assert await kit.scripts.buried(kit.k, ids, 60_000) == 0

    assert await kit.r.exists(kit.k.result("a"), kit.k.done("a")) == 0


async def test_a_wrong_typed_key_fails_the_call_having_written_nothing(kit: Kit) -> None:
    ids = await _bury(kit, "a", "b")
    await kit.r.set(kit.k.done("b"), "garbage")

    with pytest.raises(ResponseError):  # WRONGTYPE (Redis 6.2 loses the text)
        await kit.scripts.buried(kit.k, ids, 60_000)

    assert await kit.r.exists(kit.k.result("a"), kit.k.done("a"), kit.k.result("b")) == 0


async def test_a_refused_record_does_not_hold_up_the_worker(
    make_worker: MakeWorker, redis_url: str, prefix: str
) -> None:
    w = make_worker()
    ran: list[int] = []

    @w.task(name="tests.add")
    async def add(ctx: JobContext, n: int) -> int:
        ran.append(n)
        return n

    bad = await w.enqueue("tests.add", 1)
    good = [await w.enqueue("tests.add", n) for n in range(2, 5)]
    k = QueueKeys(prefix, "default")
    async with redis.asyncio.Redis.from_url(redis_url) as r:
        await r.hset(k.attempts, bad.id, b"two")
        await r.set(k.done(bad.id), "garbage")  # the done marker cannot be written
    stats = await burst(w)
    assert stats["dead"] == 1 and stats["complete"] == 3
    assert [await h.result(timeout=5) for h in good] == [2, 3, 4]
    assert (await bad.info()).status is JobStatus.DEAD
