"""Limiters across real worker processes: a fleet-wide concurrency cap, a SIGKILLed
holder's slot coming back after its lease, and rate limits held by three processes at once,
each checked against its exact definition (on one Redis and on the cluster)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from aioworker import Concurrent, JobHandle, Worker
from aioworker.limits import Limiter
from tests.apps import limited
from tests.apps.limited import RATE, track_key
from tests.limitkit import limit_url, text
from tests.worker_procs import WorkerSpawner

__all__ = ("limit_url",)

pytestmark = pytest.mark.slow

APP = "tests.apps.limited:worker"
SECOND_US = 1_000_000


@pytest.fixture
async def producer(limit_url: str, prefix: str) -> AsyncIterator[Worker]:
    w = limited.build(limit_url, prefix)
    try:
        yield w
    finally:
        await w.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


async def start(
    spawn_worker: WorkerSpawner, n: int, env: dict[str, str], *queues: str
) -> list[subprocess.Popen[bytes]]:
    args = [arg for q in queues for arg in ("-q", q)]
    procs = [spawn_worker(APP, *args, env=env) for _ in range(n)]
    for proc in procs:
        await spawn_worker.wait_for_output_async(proc, "serving", timeout_s=30)
    return procs


async def stop(spawn_worker: WorkerSpawner, procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        assert await spawn_worker.wait_exit(proc, timeout_s=20) == 0, spawn_worker.output(proc)


async def test_a_concurrency_limit_of_5_holds_across_4_worker_processes(
    spawn_worker: WorkerSpawner, producer: Worker, limit_url: str, prefix: str
) -> None:
    env = {"AIOWORKER_REDIS_URL": limit_url, "TEST_PREFIX": prefix}
    procs = await start(spawn_worker, 4, env, "capped")
    capped = producer.tasks["capped"]
    jobs: list[JobHandle[int]] = await producer.enqueue_many([capped.call(0.3) for _ in range(40)])

    attempts = [await job.result(timeout=60) for job in jobs]
    await stop(spawn_worker, procs)

    client = await producer.client.broker.connect()
    assert await client.get(track_key(prefix, "peak")) == b"5"
    assert await client.get(track_key(prefix, "now")) == b"0"
    ran = Counter(text(x) for x in await client.lrange(track_key(prefix, "ran"), 0, -1))
    assert ran == {job.id: 1 for job in jobs}
    assert attempts == [1] * 40  # deferrals used no attempt (retries=0)
    # every hold was given back
    assert await client.zcard(Concurrent("task:capped", 5, on=producer).keys.holders) == 0


async def test_a_sigkilled_holders_slot_comes_back_after_its_lease(
    spawn_worker: WorkerSpawner, producer: Worker, limit_url: str, prefix: str
) -> None:
    env = {"AIOWORKER_REDIS_URL": limit_url, "TEST_PREFIX": prefix, "TEST_LEASE_S": "2"}
    (holder,) = await start(spawn_worker, 1, env, "held")
    job: JobHandle[int] = await producer.tasks["held"].enqueue(60)
    cap = Concurrent("task:held", 1, lease=2, on=producer)
    client = await producer.client.broker.connect()

    async def held() -> bool:
        return bool(await client.zcard(cap.keys.holders))

    await eventually(held, 20, "the job holds the fleet-wide slot")
    holder.send_signal(signal.SIGKILL)
    assert await spawn_worker.wait_exit(holder, timeout_s=10) == -signal.SIGKILL
    holders: list[Any] = await client.zrange(cap.keys.holders, 0, -1, withscores=True)
    ((token, deadline),) = holders

    assert not await cap.try_acquire()  # the dead worker's hold still counts
    taken = await cap.wait(max_wait=15)

    # not a moment before the dead holder's last renewal ran out
    assert taken.redis_time_us // 1000 >= int(deadline)
    members: list[Any] = await client.zrange(cap.keys.holders, 0, -1)
    assert [text(x) for x in members] == [taken.token]
    assert await cap.release(token.decode()) is False
    assert await cap.release(taken) is True
    # the crashed run's job is recovered by another worker and gets the slot back
    (rescuer,) = await start(spawn_worker, 1, env, "held")
    assert await job.result(timeout=30) == 2
    await stop(spawn_worker, [rescuer])


def sliding_max(times: list[int], span_us: int) -> int:
    """The most admissions in any half-open interval of ``span_us``."""
    most, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= span_us:
            lo += 1
        most = max(most, hi - lo + 1)
    return most


async def test_rate_limits_hold_across_3_worker_processes(
    spawn_worker: WorkerSpawner, producer: Worker, limit_url: str, prefix: str
) -> None:
    env = {"AIOWORKER_REDIS_URL": limit_url, "TEST_PREFIX": prefix}
    procs = await start(spawn_worker, 3, env, "window", "bucket", "gcra")
    kinds = ("window", "bucket", "gcra")
    for kind in kinds:
        task = producer.tasks[kind]
        await producer.enqueue_many([task.call() for _ in range(400)])
    client = await producer.client.broker.connect()
    limiters: dict[str, Limiter] = {}
    for kind in kinds:
        (gate,) = producer.tasks[kind].gates
        limiters[kind] = gate.limiter  # type: ignore[attr-defined]

    async def admissions(kind: str) -> list[int]:
        key = track_key(prefix, f"admitted:{limiters[kind].name}")
        return sorted(int(text(x)) for x in await client.lrange(key, 0, -1))

    async def first_admissions() -> bool:
        return all([await admissions(kind) for kind in kinds])

    await eventually(first_admissions, 20, "every limiter admitted a job")
    t0 = {kind: (await admissions(kind))[0] for kind in kinds}

    async def past_5_s() -> bool:
        return await producer.client.broker.redis_time_ms() * 1000 > max(t0.values()) + 5.3e6

    await eventually(past_5_s, 20, "5 s of admissions")
    await stop(spawn_worker, procs)

    times = {kind: await admissions(kind) for kind in kinds}
    within = {k: [t for t in ts if t < t0[k] + 5 * SECOND_US] for k, ts in times.items()}

    # Window: at most 50 in any interval of 1 s, and at least 90 % of the 250 allowed in 5 s
    assert sliding_max(times["window"], SECOND_US) <= RATE
    assert len(within["window"]) >= 0.9 * 5 * RATE

    # Bucket: at most 50 in each second of Redis time, and 90 % of the full seconds' 50
    per_second = Counter(t // SECOND_US for t in times["bucket"])
    assert max(per_second.values()) <= RATE
    start_s = -(-t0["bucket"] // SECOND_US)
    full = range(start_s, start_s + 4)
    assert sum(per_second[s] for s in full) >= 0.9 * RATE * len(full)

    # GCRA: for admissions i..j, j - i + 1 <= burst + (t_j - t_i) / T, with T = 20 ms
    ts = times["gcra"]
    interval = SECOND_US // RATE
    for i in range(len(ts)):
        for j in range(i + 5, len(ts)):
            assert (j - i + 1) * interval <= 5 * interval + (ts[j] - ts[i]), (i, j)
    assert len(within["gcra"]) >= 0.9 * (5 + 5 * RATE)

    # deferrals used no attempt: with retries=0 a used one would have dead-lettered jobs
    for kind in kinds:
        assert (await producer.client.counts(kind))["dead"] == 0
