"""Health probes: /livez and /readyz while running, draining on shutdown, Redis outages.

Probes are what Kubernetes and load balancers act on: readiness must turn 503 the moment a
shutdown starts (so no new traffic or scale decisions count this worker), while liveness
stays 200 through the drain (so the worker is not killed before its jobs are requeued).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

import httpx
import pytest

from aioworker import Backoff, JobContext, JobStatus, Worker
from tests.apps import basic
from tests.redis_procs import RedisProcess, pick_free_port
from tests.worker_procs import WorkerSpawner

SECRET = "s3cret-argument-7f3a9c"  # a job argument that must never leak into a probe


@asynccontextmanager
async def probe_client(port: int) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=5
    ) as client:
        yield client


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


async def answers(client: httpx.AsyncClient, path: str, status: int) -> bool:
    try:
        return (await client.get(path)).status_code == status
    except httpx.TransportError:
        return False  # not listening yet


def make_worker(redis_url: str, prefix: str, port: int) -> Worker:
    return Worker(
        redis_url,
        prefix=prefix,
        lease_timeout=2,
        backoff=Backoff(base_s=0.05, jitter=False),
        health_port=port,
    )


async def test_probes_answer_while_the_worker_runs(redis_url: str, prefix: str) -> None:
    port = pick_free_port()
    w = make_worker(redis_url, prefix, port)
    started = asyncio.Event()
    release = asyncio.Event()

    @w.task(name="hold")
    async def hold(ctx: JobContext, secret: str) -> str:
        started.set()
        await release.wait()
        return secret[:3]

    run = asyncio.create_task(w.run(handle_signals=False))
    try:
        async with probe_client(port) as client:
            await eventually(lambda: answers(client, "/livez", 200), "/livez answers", 10)
            job = await hold.enqueue(SECRET)
            await asyncio.wait_for(started.wait(), 10)

            bodies: list[bytes] = []
            for path in ("/livez", "/healthz", "/readyz", "/readyz?full=1"):
                resp = await client.get(path)
                assert (resp.status_code, resp.content) == (200, b"ok\n"), path
                assert resp.headers["content-type"] == "text/plain"
                bodies.append(resp.content)
            for path in ("/", "/jobs", "/metrics", f"/{job.id}", "/livez/extra"):
                resp = await client.get(path)
                assert (resp.status_code, resp.content) == (404, b"not found\n"), path
                bodies.append(resp.content)
            resp = await client.post("/readyz", content=b"x")
            assert resp.status_code == 405
            bodies.append(resp.content)
            head = await client.head("/readyz")
            assert head.status_code == 200
            assert head.content == b""

            for body in bodies:
                assert SECRET.encode() not in body
                assert job.id.encode() not in body
            release.set()
            assert await job.result(timeout=10) == "s3c"
    finally:
        release.set()
        run.cancel()
        with suppress(asyncio.CancelledError):
            await run
        await w.close()
    # the server is gone with the run
    async with probe_client(port) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/livez")


async def test_readiness_reports_a_redis_outage_and_recovers(
    redis_proc: RedisProcess, prefix: str
) -> None:
    port = pick_free_port()
    w = make_worker(redis_proc.url, prefix, port)

    @w.task(name="noop")
    async def noop(ctx: JobContext) -> None:
        return None

    run = asyncio.create_task(w.run(handle_signals=False))
    try:
        async with probe_client(port) as client:
            await eventually(lambda: answers(client, "/readyz", 200), "ready", 10)
            redis_proc.stop()
            await eventually(lambda: answers(client, "/readyz", 503), "not ready", 15)
            resp = await client.get("/readyz")
            assert resp.content == b"redis unavailable\n"
            live = await client.get("/livez")
            assert (live.status_code, live.content) == (200, b"ok\n")
            redis_proc.start()
            await eventually(lambda: answers(client, "/readyz", 200), "ready again", 15)
        job = await noop.enqueue()
        await job.result(timeout=10)
    finally:
        run.cancel()
        with suppress(asyncio.CancelledError):
            await run
        await w.close()


@pytest.mark.slow
async def test_readiness_turns_draining_on_sigterm_while_liveness_stays_up(
    spawn_worker: WorkerSpawner, redis_url: str, prefix: str
) -> None:
    port = pick_free_port()
    producer = basic.build(redis_url, prefix)
    grace_s = 3.0
    proc = spawn_worker(
        "tests.apps.basic:worker",
        "--health-port",
        str(port),
        "--shutdown-grace",
        str(grace_s),
        env={"AIOWORKER_REDIS_URL": redis_url, "TEST_PREFIX": prefix},
    )
    secret_n = 739_104_552  # the job's argument, looked for in every answer
    try:
        async with probe_client(port) as client:
            await eventually(lambda: answers(client, "/readyz", 200), "ready", 15)
            job = await producer.enqueue("nap", secret_n, 60.0)

            async def job_runs() -> bool:
                return await job.status() is JobStatus.RUNNING

            await eventually(job_runs, "the job runs", 10)
            assert (await client.get("/readyz")).status_code == 200

            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            await eventually(lambda: answers(client, "/readyz", 503), "draining", grace_s)
            seen: list[httpx.Response] = []
            # during the grace period: not ready (draining), still alive
            while time.monotonic() - signalled < grace_s - 1.0:
                ready = await client.get("/readyz")
                live = await client.get("/livez")
                assert (ready.status_code, ready.content) == (503, b"draining\n")
                assert (live.status_code, live.content) == (200, b"ok\n")
                seen += [ready, live]
                await asyncio.sleep(0.2)
            assert len(seen) >= 2
            assert await job.status() is JobStatus.RUNNING  # still running in the grace
            for resp in seen:
                assert str(secret_n).encode() not in resp.content
                assert job.id.encode() not in resp.content
        code = await spawn_worker.wait_exit(proc, timeout_s=grace_s + 10)
        assert code == 0, spawn_worker.output(proc)
        # interrupted at the end of the grace and requeued, not lost
        assert await job.status() is JobStatus.QUEUED
    finally:
        await producer.close()
