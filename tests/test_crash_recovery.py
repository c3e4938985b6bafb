"""A worker killed with SIGKILL mid-job: its jobs are recovered, resumed and done once.

And the other side of leases: a live worker's long job is never taken by another worker.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from aioworker import JobHandle, Worker
from tests.apps import durable
from tests.apps.durable import LEASE_S, mark_key, parse_starts
from tests.worker_procs import WorkerSpawner

pytestmark = pytest.mark.slow

APP = "tests.apps.durable:worker"


@pytest.fixture
async def producer(redis_url: str, prefix: str) -> AsyncIterator[Worker]:
    w = durable.build(redis_url, prefix)
    try:
        yield w
    finally:
        await w.close()


@pytest.fixture
async def r(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    async with aioredis.Redis.from_url(redis_url) as client:
        yield client


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


async def test_jobs_of_a_killed_worker_are_recovered_resumed_and_done_once(
    spawn_worker: WorkerSpawner,
    producer: Worker,
    r: aioredis.Redis,
    redis_url: str,
    prefix: str,
) -> None:
    env = {"AIOWORKER_REDIS_URL": redis_url, "TEST_PREFIX": prefix}
    ticker = producer.tasks["ticker"]
    jobs: list[JobHandle[dict[str, object]]] = await producer.enqueue_many(
        [ticker.call(12, 0.25) for _ in range(4)]
    )
    first = spawn_worker(APP, env=env)

    async def all_checkpointed() -> bool:
        states = [(await job.info()).state for job in jobs]
        return all(isinstance(s, int) and s >= 2 for s in states)

    await eventually(all_checkpointed, 20, "every job saved two checkpoints")
    first.send_signal(signal.SIGKILL)
    killed_at = time.time()
    assert await spawn_worker.wait_exit(first, timeout_s=10) == -signal.SIGKILL
    saved = {job.id: (await job.info()).state for job in jobs}

    second = spawn_worker(APP, "--burst", env=env)
    results = [await job.result(timeout=30) for job in jobs]
    assert await spawn_worker.wait_exit(second, timeout_s=20) == 0, spawn_worker.output(second)
    out = spawn_worker.output(second)

    for job, result in zip(jobs, results, strict=True):
        # the resumed run saw the checkpoint the killed run left, and the crashed run counted
        assert result == {"resumed_from": saved[job.id], "attempt": 2}
        assert await r.get(mark_key(prefix, "completions", job.id)) == b"1"
        starts = parse_starts(await r.lrange(mark_key(prefix, "starts", job.id), 0, -1))
        assert [attempt for _, attempt in starts] == [1, 2]
        recovered_after = starts[1][0] - killed_at
        # not before the lease could have expired (it was renewed at most a heartbeat
        # before the kill), and soon after it did
        assert LEASE_S / 2 <= recovered_after <= LEASE_S + 8, recovered_after
        assert job.id in out
    assert "recovered 4 job(s) of queue default" in out
    assert await producer.client.counts("default") == {
        "ready": 0,
        "scheduled": 0,
        "active": 0,
        "dead": 0,
    }


async def test_a_long_job_of_a_live_worker_is_never_taken_by_another(
    spawn_worker: WorkerSpawner,
    producer: Worker,
    r: aioredis.Redis,
    redis_url: str,
    prefix: str,
) -> None:
    env = {"AIOWORKER_REDIS_URL": redis_url, "TEST_PREFIX": prefix}
    workers = [spawn_worker(APP, env=env) for _ in range(2)]
    for proc in workers:
        await spawn_worker.wait_for_output_async(proc, "serving", timeout_s=20)
    ticks = int(LEASE_S * 3.5)
    job = await producer.tasks["ticker"].enqueue(ticks, 1.0)  # 3.5 leases long

    result = await job.result(timeout=ticks + 15)

    assert result == {"resumed_from": None, "attempt": 1}
    starts = parse_starts(await r.lrange(mark_key(prefix, "starts", job.id), 0, -1))
    assert len(starts) == 1
    assert await r.get(mark_key(prefix, "completions", job.id)) == b"1"
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    for proc in workers:
        assert await spawn_worker.wait_exit(proc, timeout_s=15) == 0
        out = spawn_worker.output(proc)
        assert "recovered" not in out, out
        assert "lease lost" not in out, out
