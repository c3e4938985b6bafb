"""Jobs that cannot run are dead-lettered at once, and the worker goes on with the next."""

from __future__ import annotations

import orjson
import pytest
import redis.asyncio

from aioworker import JobContext, JobDead, JobStatus
from aioworker.keys import QueueKeys
from tests.worker_kit import MakeWorker, burst, running, wait_for_status


async def write_raw_job(redis_url: str, prefix: str, job_id: str, record: bytes) -> None:
    """Put a job record straight into Redis, the way a foreign or broken producer might."""
    k = QueueKeys(prefix, "default")
    async with redis.asyncio.Redis.from_url(redis_url) as r:
        await r.hset(k.jobs, job_id, record)
        await r.rpush(k.ready, job_id)
        await r.rpush(k.wake, 1)


async def test_unknown_task_is_dead_and_the_worker_runs_the_next_job(
    make_worker: MakeWorker,
) -> None:
    producer = make_worker()
    consumer = make_worker()
    ran: list[str] = []

    @producer.task(name="billing.refund", retries=5)
    async def refund(ctx: JobContext, order: str) -> None:
        raise AssertionError("the producer never runs jobs")

    @producer.task(name="billing.charge")
    async def charge_p(ctx: JobContext, order: str) -> str:
        raise AssertionError("the producer never runs jobs")

    @consumer.task(name="billing.charge")
    async def charge_c(ctx: JobContext, order: str) -> str:
        ran.append(order)
        return f"charged {order}"

    async with running(consumer) as run:
        ghost = await refund.enqueue("o-1")
        await wait_for_status(consumer, ghost.id, JobStatus.DEAD)
        good = await charge_p.enqueue("o-2")
        assert await good.result(timeout=5) == "charged o-2"
        assert not run.done()

    assert ran == ["o-2"]
    info = await ghost.info()
    assert info.status is JobStatus.DEAD
    assert info.attempts == 1  # no retries for a task this worker cannot run
    assert info.error is not None
    assert info.error["type"] == "UnknownTask"
    assert "billing.refund" in info.error["message"]
    assert "billing.charge" in info.error["message"]  # what this worker does have
    with pytest.raises(JobDead):
        await ghost.result(timeout=5)

    # the dead job is kept: a worker that knows the task can run it after retry_dead
    consumer2 = make_worker()
    refunded: list[str] = []

    @consumer2.task(name="billing.refund")
    async def refund_c(ctx: JobContext, order: str) -> None:
        refunded.append(order)

    assert await consumer2.client.retry_dead("default") == 1
    await burst(consumer2)
    assert refunded == ["o-1"]


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (b"no stamp here", "no time stamp"),
        (b"abc|{}", "bad time stamp"),
        (b"1700000000000|{not json", "not valid JSON"),
        (b"1700000000000|[1, 2]", "no task name"),
        (b'1700000000000|{"t": "x", "a": {"n": 1}, "k": {}}', "not a list"),
    ],
)
async def test_undecodable_payload_is_dead_with_decode_error(
    make_worker: MakeWorker, redis_url: str, prefix: str, record: bytes, why: str
) -> None:
    w = make_worker()
    ran: list[int] = []

    @w.task()
    async def good(ctx: JobContext, n: int) -> int:
        ran.append(n)
        return n

    await write_raw_job(redis_url, prefix, "broken-1", record)
    after = await good.enqueue(1)
    stats = await burst(w)

    assert stats["dead"] == 1
    assert stats["complete"] == 1
    assert ran == [1]
    assert await after.result(timeout=5) == 1
    broken = w.job("broken-1")
    info = await broken.info()
    assert info.status is JobStatus.DEAD
    assert info.error is not None
    assert info.error["type"] == "DecodeError"
    assert why in info.error["message"]
    with pytest.raises(JobDead):
        await broken.result(timeout=5)
    assert (await w.client.counts("default"))["dead"] == 1


async def test_stored_arguments_that_do_not_fit_are_dead_bad_arguments(
    make_worker: MakeWorker, redis_url: str, prefix: str
) -> None:
    # an old producer enqueued with the old signature; the new worker needs another argument
    old = make_worker()
    new = make_worker()
    calls: list[tuple[int, str]] = []

    @old.task(name="invoice.send")
    async def send_old(ctx: JobContext, amount: int) -> None:
        raise AssertionError("the producer never runs jobs")

    @new.task(name="invoice.send", retries=3)
    async def send_new(ctx: JobContext, amount: int, currency: str) -> str:
        calls.append((amount, currency))
        return f"{amount} {currency}"

    stale = await send_old.enqueue(10)
    fresh = await send_new.enqueue(20, "EUR")
    body = {"t": "invoice.send", "a": [1, 2, 3], "k": {}}
    await write_raw_job(redis_url, prefix, "too-many", b"1700000000000|" + orjson.dumps(body))
    stats = await burst(new)

    assert calls == [(20, "EUR")]
    assert await fresh.result(timeout=5) == "20 EUR"
    assert stats["dead"] == 2
    assert stats["retry"] == 0
    for job_id in (stale.id, "too-many"):
        info = await new.job(job_id).info()
        assert info.status is JobStatus.DEAD
        assert info.attempts == 1
        assert info.error is not None
        assert info.error["type"] == "BadArguments"
        assert "invoice.send" in info.error["message"]


async def test_result_that_is_not_json_is_dead_without_retries(make_worker: MakeWorker) -> None:
    w = make_worker()
    runs: list[int] = []

    @w.task(retries=3)
    async def leaky(ctx: JobContext) -> object:
        runs.append(ctx.attempt)
        return object()

    @w.task()
    async def fine(ctx: JobContext) -> dict[str, list[int]]:
        return {"ok": [1, 2]}

    bad = await leaky.enqueue()
    good = await fine.enqueue()
    stats = await burst(w)

    assert runs == [1]
    assert stats["dead"] == 1
    assert stats["complete"] == 1
    assert await good.result(timeout=5) == {"ok": [1, 2]}
    info = await bad.info()
    assert info.status is JobStatus.DEAD
    assert info.error is not None
    assert info.error["type"] == "ResultError"
    assert "JSON" in info.error["message"]
    with pytest.raises(JobDead):
        await bad.result(timeout=5)
