"""SIGTERM on a real worker process: drain, interrupt, requeue with checkpoints, resume.

Jobs record their starts, completions and step calls in Redis (see ``tests.apps.durable``),
so each test can say exactly how often every job ran.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from aioworker import JobHandle, JobStatus, Worker
from tests.apps import durable
from tests.apps.durable import mark_key, parse_starts
from tests.worker_procs import WorkerSpawner

pytestmark = pytest.mark.slow

APP = "tests.apps.durable:worker"
CANCEL_GRACE_S = 1.0  # the app's cancel_grace
MARGIN_S = 6.0  # process start-up, Redis round trips and a loaded machine


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


@pytest.fixture
def env(redis_url: str, prefix: str) -> dict[str, str]:
    return {"AIOWORKER_REDIS_URL": redis_url, "TEST_PREFIX": prefix}


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


async def terminate(
    spawn_worker: WorkerSpawner, proc: subprocess.Popen[bytes], *, timeout_s: float
) -> float:
    """SIGTERM the worker, check it exits 0 within ``timeout_s``; returns the time taken."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = await spawn_worker.wait_exit(proc, timeout_s=timeout_s)
    assert code == 0, spawn_worker.output(proc)
    return time.monotonic() - started


def assert_interruption_logged(out: str, job_id: str) -> None:
    """One log line names the job and says it was interrupted."""
    lines = [line for line in out.splitlines() if job_id in line and "interrupt" in line.lower()]
    assert len(lines) == 1, f"no single interruption line for job {job_id}:\n{out}"


async def assert_requeued(
    jobs: list[JobHandle[Any]], producer: Worker, queue: str = "default"
) -> dict[str, Any]:
    """Every job is back at the queue's front, no attempt used; returns their states."""
    assert await producer.client.counts(queue) == {
        "ready": len(jobs),
        "scheduled": 0,
        "active": 0,
        "dead": 0,
    }
    states = {}
    for job in jobs:
        info = await job.info()
        assert info.status is JobStatus.QUEUED
        assert info.attempts == 0
        states[job.id] = info.state
    return states


async def test_sigterm_requeues_running_jobs_and_they_resume_from_checkpoints(
    spawn_worker: WorkerSpawner,
    producer: Worker,
    r: aioredis.Redis,
    env: dict[str, str],
    prefix: str,
) -> None:
    ticker = producer.tasks["ticker"]
    jobs = await producer.enqueue_many([ticker.call(20, 0.5) for _ in range(20)])  # ~10 s
    first = spawn_worker(APP, "--shutdown-grace", "1", env=env)

    async def all_started() -> bool:
        keys = [mark_key(prefix, "starts", job.id) for job in jobs]
        return int(await r.exists(*keys)) == len(jobs)

    await eventually(all_started, 20, "all 20 jobs started")
    await asyncio.sleep(2.0)
    took = await terminate(spawn_worker, first, timeout_s=30)
    assert took < 1 + CANCEL_GRACE_S + MARGIN_S, took
    out = spawn_worker.output(first)
    for job in jobs:
        assert_interruption_logged(out, job.id)
    assert (
        "20 job(s) were running, 0 finished, 20 interrupted and requeued, "
        "0 ignored cancellation" in out
    )

    states = await assert_requeued(jobs, producer)
    assert all(isinstance(s, int) and 2 <= s < 20 for s in states.values()), states

    second = spawn_worker(APP, "--burst", env=env)
    results = [await job.result(timeout=30) for job in jobs]
    assert await spawn_worker.wait_exit(second, timeout_s=20) == 0, spawn_worker.output(second)
    for job, result in zip(jobs, results, strict=True):
        # resumed where the interrupted run left off; the interrupted run was no attempt
        assert result == {"resumed_from": states[job.id], "attempt": 1}
        assert await r.get(mark_key(prefix, "completions", job.id)) == b"1"
        starts = parse_starts(await r.lrange(mark_key(prefix, "starts", job.id), 0, -1))
        assert [attempt for _, attempt in starts] == [1, 1]


async def test_a_second_sigterm_skips_the_grace_period_and_still_requeues(
    spawn_worker: WorkerSpawner,
    producer: Worker,
    r: aioredis.Redis,
    env: dict[str, str],
    prefix: str,
) -> None:
    ticker = producer.tasks["ticker"]
    jobs = await producer.enqueue_many([ticker.call(40, 0.25) for _ in range(5)])  # ~10 s
    proc = spawn_worker(APP, "--shutdown-grace", "60", env=env)

    async def all_checkpointed() -> bool:
        states = [(await job.info()).state for job in jobs]
        return all(isinstance(s, int) for s in states)

    await eventually(all_checkpointed, 20, "all jobs saved a checkpoint")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    await spawn_worker.wait_for_output_async(proc, "shutting down", timeout_s=10)
    proc.send_signal(signal.SIGTERM)
    assert await spawn_worker.wait_exit(proc, timeout_s=30) == 0, spawn_worker.output(proc)
    took = time.monotonic() - started
    assert took < 10, took  # far less than the 60 s grace period
    out = spawn_worker.output(proc)
    assert "SIGTERM again: skipping the rest of the grace period" in out
    for job in jobs:
        assert_interruption_logged(out, job.id)

    states = await assert_requeued(jobs, producer)
    assert all(isinstance(s, int) and s >= 1 for s in states.values()), states
    for job in jobs:
        assert await r.get(mark_key(prefix, "completions", job.id)) is None


async def test_a_job_ignoring_cancellation_is_requeued_at_the_hard_deadline(
    spawn_worker: WorkerSpawner,
    producer: Worker,
    r: aioredis.Redis,
    env: dict[str, str],
    prefix: str,
) -> None:
    job = await producer.tasks["stubborn"].enqueue(60)
    first = spawn_worker(APP, "--shutdown-grace", "0.5", env=env)

    async def checkpointed() -> bool:
        return bool((await job.info()).state == "started")

    await eventually(checkpointed, 20, "the job saved its checkpoint")
    took = await terminate(spawn_worker, first, timeout_s=30)
    assert took < 0.5 + CANCEL_GRACE_S + MARGIN_S, took
    out = spawn_worker.output(first)
    assert f"job {job.id} stubborn" in out
    assert "ignored cancellation; requeued at the front of its queue with its last checkpoint" in (
        out
    )
    assert (
        "1 job(s) were running, 0 finished, 1 interrupted and requeued, 1 ignored cancellation"
        in out
    )
    assert await assert_requeued([job], producer) == {job.id: "started"}

    second = spawn_worker(APP, "--burst", env=env)
    assert await job.result(timeout=20) == {"resumed_from": "started", "attempt": 1}
    assert await spawn_worker.wait_exit(second, timeout_s=20) == 0, spawn_worker.output(second)
    assert await r.get(mark_key(prefix, "completions", job.id)) == b"1"
    starts = parse_starts(await r.lrange(mark_key(prefix, "starts", job.id), 0, -1))
    assert [attempt for _, attempt in starts] == [1, 1]


async def test_shutdown_with_nothing_running_is_quick(
    spawn_worker: WorkerSpawner, env: dict[str, str]
) -> None:
    proc = spawn_worker(APP, env=env)
    await spawn_worker.wait_for_output_async(proc, "serving", timeout_s=20)
    took = await terminate(spawn_worker, proc, timeout_s=15)
    assert took < 3, took
    assert "no job running" in spawn_worker.output(proc)


async def test_completed_steps_are_not_run_again_after_an_interruption(
    spawn_worker: WorkerSpawner,
    producer: Worker,
    r: aioredis.Redis,
    env: dict[str, str],
    prefix: str,
) -> None:
    job = await producer.tasks["stepper"].enqueue(60)
    first = spawn_worker(APP, "--shutdown-grace", "0.5", env=env)

    async def in_step_two() -> bool:
        return await r.get(mark_key(prefix, "step2", job.id)) == b"1"

    await eventually(in_step_two, 20, "the job is in its second step")
    await terminate(spawn_worker, first, timeout_s=30)
    await assert_requeued([job], producer)

    second = spawn_worker(APP, "--burst", env=env)
    assert await job.result(timeout=20) == ["one", "two"]
    assert await spawn_worker.wait_exit(second, timeout_s=20) == 0, spawn_worker.output(second)
    assert await r.get(mark_key(prefix, "step1", job.id)) == b"1"  # not called again
    assert await r.get(mark_key(prefix, "step2", job.id)) == b"2"  # interrupted, so re-run
    assert await r.get(mark_key(prefix, "completions", job.id)) == b"1"
