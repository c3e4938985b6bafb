"""Enqueueing jobs and reading them back: handles, options, bulk, idempotency, errors."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
from collections import Counter
from typing import Any, assert_type

import pytest
import redis.asyncio

from aioworker import (
    EnqueueError,
    JobContext,
    JobHandle,
    JobNotFound,
    JobStatus,
    PayloadError,
    PayloadTooLarge,
    ResultTimeout,
    UnknownTaskError,
)
from aioworker import client as client_module
from aioworker.client import CHUNK_JOBS, new_ids
from aioworker.keys import QueueKeys
from tests.scriptkit import raw_bytes
from tests.worker_kit import MakeWorker, burst


async def test_enqueue_runs_the_job_and_returns_its_result(make_worker: MakeWorker) -> None:
    w = make_worker()

    @w.task()
    async def add(ctx: JobContext, a: int, b: int) -> int:
        return a + b

    job = await add.enqueue(2, b=3)
    assert job.created is True
    assert job.queue == "default"
    assert await job.status() is JobStatus.QUEUED
    queued = await job.info()
    assert queued.task == add.name
    assert queued.args == [2]
    assert queued.kwargs == {"b": 3}
    assert queued.enqueued_at is not None
    assert queued.finished_at is None

    stats = await burst(w)

    assert stats["complete"] == 1
    assert stats["retry"] == stats["dead"] == 0
    assert await job.result(timeout=5) == 5
    info = await job.info()
    assert info.status is JobStatus.COMPLETE
    assert info.result == 5
    assert info.attempts == 1
    assert info.error is None
    assert info.finished_at is not None
    assert queued.enqueued_at <= info.finished_at
    assert await w.client.counts("default") == {"ready": 0, "scheduled": 0, "active": 0, "dead": 0}


async def test_handle_is_typed_by_the_task_return_type(make_worker: MakeWorker) -> None:
    w = make_worker()

    @w.task()
    async def greet(ctx: JobContext, name: str) -> str:
        return f"hello {name}"

    job = await greet.enqueue("ada")
    assert_type(job, JobHandle[str])
    await burst(w)
    value = await job.result(timeout=5)
    assert_type(value, str)
    assert value == "hello ada"


async def test_status_goes_queued_running_complete(make_worker: MakeWorker) -> None:
    w = make_worker()
    started = asyncio.Event()
    release = asyncio.Event()
    seen: list[JobStatus] = []

    @w.task()
    async def hold(ctx: JobContext) -> str:
        started.set()
        await release.wait()
        return "done"

    job = await hold.enqueue()
    seen.append(await job.status())
    run = asyncio.create_task(burst(w))
    await asyncio.wait_for(started.wait(), 5)
    seen.append(await job.status())
    assert (await job.info()).attempts == 1
    release.set()
    assert await job.result(timeout=5) == "done"
    seen.append(await job.status())
    await run
    assert seen == [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.COMPLETE]


async def test_enqueue_options_do_not_collide_with_task_arguments(
    make_worker: MakeWorker,
) -> None:
    w = make_worker(queues={"default": 10, "other": 10})

    @w.task()
    async def echo(
        ctx: JobContext,
        delay: int,
        queue: str,
        job_id: str,
        retries: int,
        timeout: float,  # noqa: ASYNC109 - a task argument named like an enqueue option
    ) -> dict[str, Any]:
        return {
            "delay": delay,
            "queue": queue,
            "job_id": job_id,
            "retries": retries,
            "timeout": timeout,
            "ctx_queue": ctx.queue,
            "ctx_job_id": ctx.job_id,
        }

    plain = await echo.enqueue(delay=3600, queue="q-arg", job_id="id-arg", retries=7, timeout=9.5)
    # the arguments are the function's: no delay, the task's queue, a generated id
    assert plain.queue == "default"
    assert plain.id != "id-arg"
    assert await plain.status() is JobStatus.QUEUED

    chosen = await echo.options(job_id="chosen-1", queue="other").enqueue(
        delay=5, queue="q-arg", job_id="id-arg", retries=1, timeout=0.5
    )
    assert chosen.id == "chosen-1"
    assert chosen.queue == "other"
    assert await chosen.status() is JobStatus.QUEUED

    await burst(w)

    assert await plain.result(timeout=5) == {
        "delay": 3600,
        "queue": "q-arg",
        "job_id": "id-arg",
        "retries": 7,
        "timeout": 9.5,
        "ctx_queue": "default",
        "ctx_job_id": plain.id,
    }
    assert await chosen.result(timeout=5) == {
        "delay": 5,
        "queue": "q-arg",
        "job_id": "id-arg",
        "retries": 1,
        "timeout": 0.5,
        "ctx_queue": "other",
        "ctx_job_id": "chosen-1",
    }


async def test_enqueue_many_across_queues_returns_handles_in_order_and_runs_each_once(
    make_worker: MakeWorker,
) -> None:
    queues = ("alpha", "beta", "gamma")
    w = make_worker(queues=dict.fromkeys(queues, 20))
    runs: Counter[int] = Counter()

    @w.task()
    async def square(ctx: JobContext, n: int) -> list[Any]:
        runs[n] += 1
        return [n * n, ctx.queue]

    specs = [square.options(queue=queues[n % 3]).call(n) for n in range(60)]
    handles = await w.enqueue_many(specs)

    assert len(handles) == 60
    assert [h.queue for h in handles] == [queues[n % 3] for n in range(60)]
    assert all(h.created for h in handles)
    assert len({h.id for h in handles}) == 60
    for q in queues:
        assert (await w.client.counts(q))["ready"] == 20

    stats = await burst(w)

    assert stats["complete"] == 60
    assert runs == Counter(range(60))
    for n, h in enumerate(handles):
        assert await h.result(timeout=5) == [n * n, queues[n % 3]]


async def test_same_job_id_is_enqueued_once_and_runs_once(make_worker: MakeWorker) -> None:
    w = make_worker()
    calls: list[str] = []

    @w.task()
    async def charge(ctx: JobContext, order: str) -> str:
        calls.append(order)
        return f"charged {order}"

    first = await charge.options(job_id="order-7").enqueue("first")
    again = await charge.options(job_id="order-7").enqueue("second")
    assert first.created is True
    assert again.created is False
    assert again.id == first.id == "order-7"
    assert (await w.client.counts("default"))["ready"] == 1

    # the same id within one bulk call is created once too
    bulk = await w.enqueue_many(
        [charge.options(job_id="order-8").call("a"), charge.options(job_id="order-8").call("b")]
    )
    assert [h.created for h in bulk] == [True, False]

    await burst(w)
    assert sorted(calls) == ["a", "first"]
    assert await first.result(timeout=5) == "charged first"

    # once it has a result, the id is still taken and nothing runs again
    late = await charge.options(job_id="order-7").enqueue("late")
    assert late.created is False
    await burst(w)
    assert sorted(calls) == ["a", "first"]
    assert await late.result(timeout=5) == "charged first"


async def test_unencodable_arguments_raise_payload_error_and_enqueue_nothing(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()

    @w.task()
    async def store(ctx: JobContext, value: Any) -> None:
        return None

    with pytest.raises(PayloadError) as caught:
        await store.enqueue(object())
    assert isinstance(caught.value, EnqueueError)
    assert isinstance(caught.value, TypeError)
    assert store.name in str(caught.value)

    # one bad job in a bulk call: none of the batch is enqueued
    with pytest.raises(PayloadError):
        await w.enqueue_many([store.call(1), store.call({1, 2}), store.call(3)])
    assert await w.client.counts("default") == {"ready": 0, "scheduled": 0, "active": 0, "dead": 0}


async def test_oversize_payload_raises_payload_too_large(make_worker: MakeWorker) -> None:
    w = make_worker(max_payload_bytes=1024)

    @w.task()
    async def store(ctx: JobContext, blob: str) -> int:
        return len(blob)

    with pytest.raises(PayloadTooLarge, match="max_payload_bytes=1024"):
        await store.enqueue("x" * 2000)
    assert (await w.client.counts("default"))["ready"] == 0

    fits = await store.enqueue("x" * 900)
    await burst(w)
    assert await fits.result(timeout=5) == 900


async def test_arguments_that_do_not_fit_raise_enqueue_error(make_worker: MakeWorker) -> None:
    w = make_worker()

    @w.task()
    async def add(ctx: JobContext, a: int, b: int) -> int:
        return a + b

    with pytest.raises(EnqueueError, match="bad arguments"):
        await add.enqueue(1)  # type: ignore[call-arg]
    with pytest.raises(EnqueueError, match="bad arguments"):
        await add.enqueue(1, 2, c=3)  # type: ignore[call-arg]
    with pytest.raises(EnqueueError, match="bad arguments"):
        await add.enqueue(1, 2, 3)  # type: ignore[call-arg]
    with pytest.raises(EnqueueError, match="bad arguments"):
        add.call(1, a=1)  # type: ignore[call-arg, misc]
    with pytest.raises(UnknownTaskError, match="no task named 'nope'"):
        await w.enqueue("nope", 1)
    assert (await w.client.counts("default"))["ready"] == 0

    by_name = await w.enqueue(add.name, 4, 5)
    await burst(w)
    assert await by_name.result(timeout=5) == 9


async def test_result_times_out_for_a_job_nobody_runs(make_worker: MakeWorker) -> None:
    w = make_worker()

    @w.task(queue="unserved")
    async def noop(ctx: JobContext) -> None:
        return None

    job = await noop.enqueue()
    started = time.monotonic()
    with pytest.raises(ResultTimeout):
        await job.result(timeout=0.4)
    waited = time.monotonic() - started
    assert 0.35 <= waited < 3.0
    assert await job.status() is JobStatus.QUEUED


async def test_unknown_job_id_is_not_found(make_worker: MakeWorker) -> None:
    w = make_worker()
    job = w.job("never-enqueued")
    assert await job.status() is JobStatus.NOT_FOUND
    started = time.monotonic()
    with pytest.raises(JobNotFound, match="never-enqueued"):
        await job.result(timeout=5)
    assert time.monotonic() - started < 2.0


async def test_status_reads_the_job_written_by_another_producer(
    make_worker: MakeWorker, redis_url: str, prefix: str
) -> None:
    producer = make_worker()
    consumer = make_worker()

    @producer.task(name="report")
    async def report_p(ctx: JobContext, n: int) -> int:
        raise AssertionError("the producer never runs jobs")

    @consumer.task(name="report")
    async def report_c(ctx: JobContext, n: int) -> int:
        return n + 1

    job = await report_p.enqueue(41)
    async with redis.asyncio.Redis.from_url(redis_url) as r:
        assert await r.hexists(QueueKeys(prefix, "default").jobs, job.id)
    await burst(consumer)
    assert await producer.job(job.id).result(timeout=5) == 42


async def test_enqueue_many_over_several_calls_keeps_order_ids_and_idempotency(
    make_worker: MakeWorker, redis_url: str, prefix: str
) -> None:
    w = make_worker()

    @w.task()
    async def echo(ctx: JobContext, n: int) -> int:
        return n

    total = 2 * CHUNK_JOBS + 3  # three script calls
    repeat = CHUNK_JOBS + 5  # repeats job 5's chosen id, in the second call
    delayed = CHUNK_JOBS - 1  # the last job of the first call
    specs = []
    for n in range(total):
        if n in (5, repeat):
            specs.append(echo.options(job_id="chosen").call(n))
        elif n == delayed:
            specs.append(echo.options(delay=3600).call(n))
        else:
            specs.append(echo.call(n))

    handles = await w.enqueue_many(specs)

    assert [h.created for h in handles] == [n != repeat for n in range(total)]
    assert handles[5].id == handles[repeat].id == "chosen"
    generated = [h.id for n, h in enumerate(handles) if n not in (5, repeat)]
    assert len(set(generated)) == total - 2
    assert all(re.fullmatch("[0-9a-f]{32}", job_id) for job_id in generated)
    k = QueueKeys(prefix, "default")
    async with redis.asyncio.Redis.from_url(redis_url) as r:
        ready = await r.lrange(k.ready, 0, -1)
        scheduled = await r.zrange(k.scheduled, 0, -1)
        jobs = await r.hgetall(k.jobs)
    assert ready == [h.id.encode() for n, h in enumerate(handles) if n not in (delayed, repeat)]
    assert scheduled == [handles[delayed].id.encode()]
    assert len(jobs) == total - 1
    body = json.dumps({"t": echo.name, "a": [5], "k": {}}, separators=(",", ":"))
    assert raw_bytes(jobs[b"chosen"]).partition(b"|")[2] == body.encode()


async def test_a_bad_payload_in_a_later_call_enqueues_nothing(make_worker: MakeWorker) -> None:
    w = make_worker()

    @w.task()
    async def store(ctx: JobContext, value: Any) -> None:
        return None

    specs = [store.call(n) for n in range(CHUNK_JOBS + 10)] + [store.call(object())]
    with pytest.raises(PayloadError):
        await w.enqueue_many(specs)
    assert await w.client.counts("default") == {"ready": 0, "scheduled": 0, "active": 0, "dead": 0}


def test_new_ids_are_distinct_hex_like_uuid4() -> None:
    ids = new_ids(10_000) + new_ids(10_000)
    assert len(set(ids)) == 20_000
    assert all(re.fullmatch("[0-9a-f]{32}", job_id) for job_id in ids)
    assert new_ids(0) == []


async def _shaped(ctx: JobContext, a: int, b: int = 2, *rest: int, c: int = 3, **more: int) -> None:
    return None


async def _keyword_needed(ctx: JobContext, a: int, *, c: int) -> None:
    return None


async def _nothing(ctx: JobContext) -> None:
    return None


async def _positional_only(ctx: JobContext, a: int, /, b: int = 1) -> None:
    return None


CALLS: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = [
    (fn, args, kwargs)
    for fn in (_shaped, _keyword_needed, _nothing, _positional_only)
    for args, kwargs in (
        ((), {}),
        ((1,), {}),
        ((1, 2), {}),
        ((1, 2, 3, 4), {}),
        ((1,), {"c": 5}),
        ((), {"a": 1}),
        ((1,), {"z": 1}),
    )
]


@pytest.mark.parametrize(("fn", "args", "kwargs"), CALLS)
async def test_call_accepts_exactly_the_arguments_the_function_does(
    make_worker: MakeWorker, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    task = make_worker().task(name="shape")(fn)
    try:
        inspect.signature(fn).bind(None, *args, **kwargs)
    except TypeError:
        with pytest.raises(EnqueueError, match="bad arguments"):
            task.call(*args, **kwargs)
    else:
        spec = task.call(*args, **kwargs)
        assert (spec.args, spec.kwargs) == (args, kwargs)


async def test_large_payloads_are_split_into_more_calls_by_their_bytes(
    make_worker: MakeWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = make_worker()

    @w.task()
    async def store(ctx: JobContext, blob: str) -> None:
        return None

    monkeypatch.setattr(client_module, "CHUNK_BYTES", 3_000)
    await w.client.register_queues(["default"])
    await store.enqueue("warm-up")  # the script is loaded: later calls are all EVALSHA
    before = (await w.client.broker.command_stats()).get("evalsha", 0)

    # each payload is about 1,000 bytes, so a call closes after its third job
    handles = await w.enqueue_many([store.call(f"{n:03}" + "x" * 1_000) for n in range(10)])

    after = (await w.client.broker.command_stats()).get("evalsha", 0)
    assert after - before == 4  # 3 + 3 + 3 + 1 jobs
    assert all(h.created for h in handles)
    assert (await w.client.counts("default"))["ready"] == 11
