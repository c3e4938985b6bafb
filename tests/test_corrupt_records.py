"""Corrupt records: a job whose stored data the worker cannot use is dead-lettered once
with the reason "corrupt record: <what>" (never recovered and retried at every lease
timeout), and an outcome write that Redis refuses is repeated until it is accepted."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio

from aioworker import JobContext, JobDead, JobStatus, Worker
from aioworker.keys import QueueKeys
from tests.worker_kit import MakeWorker, burst, running


def _keys(prefix: str) -> QueueKeys:
    return QueueKeys(prefix, "default")


async def _dead_error(w: Worker, job_id: str) -> dict[str, object]:
    info = await w.job(job_id).info()
    assert info.status is JobStatus.DEAD
    assert info.error is not None
    return info.error


def _app(make_worker: MakeWorker) -> tuple[Worker, list[int]]:
    w = make_worker()
    ran: list[int] = []

    @w.task(name="tests.add")
    async def add(ctx: JobContext, n: int) -> int:
        ran.append(n)
        return n

    return w, ran


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"t":"tests.add","a":[1],"k":{},"r":"three"}', "retries (r)"),
        (b'{"t":"tests.add","a":[1],"k":{},"r":-1}', "retries (r)"),
        (b'{"t":"tests.add","a":[1],"k":{},"o":"soon"}', "timeout (o)"),
    ],
)
async def test_a_field_of_the_wrong_kind_is_dead_once_and_burst_exits(
    make_worker: MakeWorker, redis_url: str, prefix: str, body: bytes, why: str
) -> None:
    w, ran = _app(make_worker)
    k = _keys(prefix)
    async with redis.asyncio.Redis.from_url(redis_url) as r:
        await r.hset(k.jobs, "bad", b"1700000000000|" + body)
        await r.rpush(k.ready, "bad")
    good = await w.enqueue("tests.add", 2)

    stats = await burst(w)

    assert stats["dead"] == 1 and stats["complete"] == 1
    assert ran == [2] and await good.result(timeout=5) == 2
    error = await _dead_error(w, "bad")
    assert str(error["message"]).startswith("corrupt record: ") and why in str(error["message"])


async def test_a_checkpoint_that_is_not_json_is_dead_once(
    make_worker: MakeWorker, redis_url: str, prefix: str
) -> None:
    w, ran = _app(make_worker)
    job = await w.enqueue("tests.add", 1)
    async with redis.asyncio.Redis.from_url(redis_url) as r:
        await r.hset(_keys(prefix).state, job.id, b"{not json")

    stats = await burst(w)

    assert stats["dead"] == 1 and ran == []
    error = await _dead_error(w, job.id)
    assert str(error["message"]).startswith("corrupt record: the checkpoint is not valid JSON")


async def test_an_attempt_count_that_is_not_an_integer_is_dead_once(
    make_worker: MakeWorker, redis_url: str, prefix: str
) -> None:
    w, ran = _app(make_worker)
    bad = await w.enqueue("tests.add", 1)
    good = await w.enqueue("tests.add", 2)
    async with redis.asyncio.Redis.from_url(redis_url) as r:
        await r.hset(_keys(prefix).attempts, bad.id, b"two")

    await burst(w)

    assert ran == [2] and await good.result(timeout=5) == 2
    error = await _dead_error(w, bad.id)
    assert error["message"] == "corrupt record: its attempt count is not an integer"


async def test_a_job_dead_lettered_by_fetch_wakes_its_result_waiter_with_job_dead(
    make_worker: MakeWorker, redis_url: str, prefix: str
) -> None:
    w, ran = _app(make_worker)
    bad = await w.enqueue("tests.add", 1)
    good = await w.enqueue("tests.add", 2)
    async with redis.asyncio.Redis.from_url(redis_url) as r:
        await r.hset(_keys(prefix).attempts, bad.id, b"two")
        async with running(w):
            waiter = asyncio.create_task(bad.result(timeout=5))
            # the done marker wakes it: no ResultTimeout after the whole 5 s
            with pytest.raises(JobDead, match="corrupt record: its attempt count") as caught:
                await waiter
            assert await good.result(timeout=5) == 2
        assert await r.exists(_keys(prefix).result(bad.id)) == 1  # outlives the dead letter
    assert caught.value.error["type"] == "CorruptRecord"
    assert ran == [2]
    assert (await bad.info()).status is JobStatus.DEAD
    stats = await burst(w)  # nothing left; this run's counts are its own
    assert stats["dead"] == 0


async def test_the_dead_count_of_a_worker_includes_jobs_dead_lettered_by_fetch(
    make_worker: MakeWorker, redis_url: str, prefix: str
) -> None:
    w, ran = _app(make_worker)
    handles = [await w.enqueue("tests.add", n) for n in range(6)]
    async with redis.asyncio.Redis.from_url(redis_url) as r:
        for h in handles[:3]:
            await r.hset(_keys(prefix).attempts, h.id, b"two")
    stats = await burst(w)
    assert stats["dead"] == 3 and stats["complete"] == 3
    assert sorted(ran) == [3, 4, 5]
    for h in handles[:3]:
        with pytest.raises(JobDead, match="corrupt record"):
            await h.result(timeout=5)


async def test_an_internal_error_before_the_outcome_dead_letters_the_job_once(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()
    ran: list[int] = []

    @w.task(name="tests.broken")
    async def broken(ctx: JobContext, n: int) -> None:
        ran.append(n)

    def fails(retries_override: int | None) -> int:
        raise RuntimeError("worker bug")

    broken.max_attempts = fails  # type: ignore[method-assign]  # fails inside the worker
    bad = await broken.enqueue(1)

    stats = await burst(w)

    assert stats["dead"] == 1 and ran == []
    error = await _dead_error(w, bad.id)
    assert error["type"] == "InternalError" and "worker bug" in str(error["message"])


async def test_a_refused_ack_is_repeated_until_redis_accepts_it(
    make_worker: MakeWorker, redis_url: str, prefix: str
) -> None:
    w = make_worker()
    ran: list[int] = []
    release = asyncio.Event()

    @w.task(name="tests.slow")
    async def slow(ctx: JobContext, n: int) -> int:
        await release.wait()
        ran.append(n)
        return n

    k = _keys(prefix)
    job = await w.enqueue("tests.slow", 7)
    async with redis.asyncio.Redis.from_url(redis_url) as r, running(w):
        for _ in range(200):
            if await r.zcard(k.active):
                break
            await asyncio.sleep(0.01)
        await r.set(k.errors, "garbage")  # the complete script refuses while this lasts
        release.set()
        await asyncio.sleep(0.3)
        assert await r.zcard(k.active) == 1  # not acknowledged yet, still leased
        await r.delete(k.errors)
        assert await job.result(timeout=5) == 7
    assert ran == [7]
