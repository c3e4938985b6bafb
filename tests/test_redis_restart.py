"""Redis crashes (SIGKILL) under a running worker and comes back: no job is lost."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from aioworker import JobStatus
from tests.apps import basic
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
