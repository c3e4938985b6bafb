"""Redis crashes (SIGKILL) under a running worker and comes back: no job is lost."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
import redis.asyncio as aioredis

from aioworker import JobStatus
from tests.apps import basic, durable
from tests.apps.durable import mark_key, parse_starts
from tests.redis_procs import RedisProcess
from tests.worker_procs import WorkerSpawner

pytestmark = pytest.mark.slow

JOBS = 500


async def test_worker_rides_out_a_redis_crash_and_restart(
    spawn_worker: WorkerSpawner, redis_proc: RedisProcess, prefix: str
) -> None:
    producer = basic.build(redis_proc.url, prefix)
    nap = producer.tasks["nap"]
    try:
        jobs = await producer.enqueue_many([nap.call(i, 0.05) for i in range(JOBS)])
        ids = [job.id for job in jobs]
        assert len(set(ids)) == JOBS
        # five at a time, about 5 s of work: Redis dies a good way into it
        proc = spawn_worker(
            "tests.apps.basic:worker",
            "--concurrency",
            "5",
            env={"AIOWORKER_REDIS_URL": redis_proc.url, "TEST_PREFIX": prefix},
        )
        deadline = time.monotonic() + 30
        while (await producer.client.counts("default"))["ready"] > JOBS - 100:
            assert time.monotonic() < deadline, spawn_worker.output(proc)
            await asyncio.sleep(0.02)
    finally:
        await producer.close()

    redis_proc.stop(signal.SIGKILL)
    await spawn_worker.wait_for_output_async(proc, "lost the connection to Redis", timeout_s=15)
    await asyncio.sleep(2.0)
    assert proc.poll() is None, spawn_worker.output(proc)
    redis_proc.start()
    await spawn_worker.wait_for_output_async(proc, "reconnected to Redis", timeout_s=30)

    producer = basic.build(redis_proc.url, prefix)
    try:
        deadline = time.monotonic() + 60
        while True:
            counts = await producer.client.counts("default")
            if counts["ready"] + counts["scheduled"] + counts["active"] == 0:
                break
            assert time.monotonic() < deadline, (counts, spawn_worker.output(proc))
            await asyncio.sleep(0.1)
        assert counts["dead"] == 0
        for n, job_id in enumerate(ids):
            info = await producer.job(job_id).info()
            assert info.status is JobStatus.COMPLETE, (job_id, info)
            assert info.result == n
            assert info.attempts >= 1
    finally:
        await producer.close()

    assert proc.poll() is None, spawn_worker.output(proc)
    out = spawn_worker.output(proc)
    assert f"lost the connection to Redis at {redis_proc.url}" in out
    assert "Traceback" not in out
    proc.send_signal(signal.SIGTERM)
    assert await spawn_worker.wait_exit(proc, timeout_s=20) == 0, spawn_worker.output(proc)


async def test_sigterm_while_redis_is_down_exits_and_the_jobs_are_recovered_later(
    spawn_worker: WorkerSpawner, redis_proc: RedisProcess, prefix: str
) -> None:
    env = {"AIOWORKER_REDIS_URL": redis_proc.url, "TEST_PREFIX": prefix}
    producer = durable.build(redis_proc.url, prefix)
    ticker = producer.tasks["ticker"]
    try:
        jobs = await producer.enqueue_many([ticker.call(16, 0.25) for _ in range(3)])
        first = spawn_worker("tests.apps.durable:worker", "--shutdown-grace", "1", env=env)
        deadline = time.monotonic() + 20
        while not all([isinstance((await job.info()).state, int) for job in jobs]):
            assert time.monotonic() < deadline, spawn_worker.output(first)
            await asyncio.sleep(0.05)
    finally:
        await producer.close()

    redis_proc.stop(signal.SIGKILL)
    await spawn_worker.wait_for_output_async(first, "lost the connection to Redis", timeout_s=15)
    started = time.monotonic()
    first.send_signal(signal.SIGTERM)
    # grace 1 s + cancel grace 1 s + 2 s for the last writes, then it gives up on Redis
    assert await spawn_worker.wait_exit(first, timeout_s=30) == 0, spawn_worker.output(first)
    took = time.monotonic() - started
    assert took < 1 + 1 + 2 + 6, took
    out = spawn_worker.output(first)
    assert "Traceback" not in out
    for job in jobs:
        assert f"could not requeue job {job.id}" in out

    redis_proc.start()
    producer = durable.build(redis_proc.url, prefix)
    try:
        jobs = [producer.job(job.id) for job in jobs]  # handles on the new connection
        saved = {job.id: (await job.info()).state for job in jobs}
        second = spawn_worker("tests.apps.durable:worker", "--burst", env=env)
        code = await spawn_worker.wait_exit(second, timeout_s=40)
        assert code == 0, spawn_worker.output(second)
        results = [await job.result(timeout=1) for job in jobs]
        async with aioredis.Redis.from_url(redis_proc.url) as r:
            for job, result in zip(jobs, results, strict=True):
                # the requeue never landed, so the interrupted run counted as an attempt
                # and the job was recovered once its lease expired, from its checkpoint
                assert result == {"resumed_from": saved[job.id], "attempt": 2}
                assert await r.get(mark_key(prefix, "completions", job.id)) == b"1"
                starts = parse_starts(await r.lrange(mark_key(prefix, "starts", job.id), 0, -1))
                assert [attempt for _, attempt in starts] == [1, 2]
    finally:
        await producer.close()
