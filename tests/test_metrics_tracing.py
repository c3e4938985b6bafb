"""Prometheus metrics scraped over HTTP from real workers, and trace context carried from
the enqueuing span into the job's span (OpenTelemetry SDK with an in-memory exporter)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aioworker import Concurrent, JobContext, MissingDependency, Worker
from tests.apps import ops
from tests.redis_procs import pick_free_port
from tests.worker_procs import ProcessSpawner, WorkerSpawner

APP = "tests.apps.ops:worker"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of the aioworker metrics: (name, sorted labels) -> value."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("aioworker_"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(port: int) -> Samples:
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        r = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "process_cpu_seconds_total" in r.text  # the default registry is exposed too
    return parse(r.text)


@pytest.fixture
async def producer(redis_url: str, prefix: str) -> AsyncIterator[Worker]:
    w = ops.build(redis_url, prefix)
    try:
        yield w
    finally:
        await w.close()


@pytest.mark.slow
async def test_metrics_count_jobs_by_task_and_outcome(
    spawn_worker: WorkerSpawner, producer: Worker, redis_url: str, prefix: str
) -> None:
    port = pick_free_port()
    env = {"AIOWORKER_REDIS_URL": redis_url, "TEST_PREFIX": prefix, "TEST_LEASE_S": "2"}
    proc = spawn_worker(APP, "-q", "default", "--metrics-port", str(port), env=env)
    await spawn_worker.wait_for_output_async(proc, "serving")
    adds = [await producer.enqueue("add", n, n) for n in range(5)]
    fails = [await producer.enqueue("fail", f"r{n}") for n in range(2)]
    for job in adds:
        await job.result(timeout=10)
    for job in fails:
        with pytest.raises(Exception, match="failed"):
            await job.result(timeout=10)

    s = await scrape(port)
    add = {"queue": "default", "task": "add"}
    fail = {"queue": "default", "task": "fail"}
    assert value(s, "aioworker_jobs_started_total", **add) == 5
    assert value(s, "aioworker_jobs_succeeded_total", **add) == 5
    assert value(s, "aioworker_jobs_failed_total", **add) == 0
    assert value(s, "aioworker_jobs_started_total", **fail) == 2
    assert value(s, "aioworker_jobs_failed_total", **fail) == 2
    assert value(s, "aioworker_jobs_dead_total", **fail) == 2
    assert value(s, "aioworker_jobs_retried_total", **fail) == 0
    assert value(s, "aioworker_jobs_in_flight", **add) == 0
    assert value(s, "aioworker_job_duration_seconds_count", **add, outcome="complete") == 5
    assert value(s, "aioworker_job_duration_seconds_count", **fail, outcome="dead") == 2
    assert value(s, "aioworker_job_latency_seconds_count", **add) == 5
    assert value(s, "aioworker_job_latency_seconds_count", **fail) == 2
    # never labelled by job id or arguments
    labels = {name for (_, pairs) in s for name, _ in pairs}
    assert labels <= {"queue", "task", "outcome", "state", "le"}, labels

    async def depth_shows_the_dead_jobs() -> bool:
        s = await scrape(port)
        return value(s, "aioworker_queue_jobs", queue="default", state="dead") == 2

    deadline = time.monotonic() + 10
    while not await depth_shows_the_dead_jobs():
        assert time.monotonic() < deadline, "queue depth gauge never showed the dead jobs"
        await asyncio.sleep(0.2)
    s = await scrape(port)
    assert value(s, "aioworker_queue_jobs", queue="default", state="ready") == 0
    assert value(s, "aioworker_queue_paused", queue="default") == 0
    proc.send_signal(signal.SIGTERM)
    assert await spawn_worker.wait_exit(proc) == 0


async def test_metrics_share_the_health_port_when_both_are_the_same(
    redis_url: str, prefix: str
) -> None:
    port = pick_free_port()
    w = ops.build(redis_url, prefix)
    w.health_port = w.metrics_port = port
    run = asyncio.create_task(w.run(queues=["default"], handle_signals=False))
    try:
        jobs = [await w.enqueue("add", n, 1) for n in range(3)]
        for job in jobs:
            await job.result(timeout=10)
        s = await scrape(port)
        assert value(s, "aioworker_jobs_succeeded_total", queue="default", task="add") == 3
        async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
            assert (await client.get(f"http://127.0.0.1:{port}/livez")).status_code == 200
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await w.close()


async def test_metrics_without_prometheus_client_name_the_install_command(
    redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    w = ops.build(redis_url, prefix)
    w.metrics_port = 0
    try:
        with pytest.raises(MissingDependency, match=r"pip install 'aioworker\[metrics\]'"):
            await w.run(queues=["default"], handle_signals=False)
    finally:
        await w.close()


@pytest.mark.slow
def test_the_job_span_continues_the_enqueuing_trace(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, prefix: str
) -> None:
    spawner = ProcessSpawner(tmp_path_factory.mktemp("traced"))
    try:
        p = spawner.spawn(
            [sys.executable, "-m", "tests.apps.traced"],
            env={"AIOWORKER_REDIS_URL": redis_url, "TEST_PREFIX": prefix},
        )
        assert p.wait(timeout=60) == 0, spawner.output(p)
        lines = [orjson.loads(x) for x in spawner.output(p).splitlines() if x.startswith("{")]
    finally:
        spawner.close()
    ids: dict[str, str] = lines[0]["jobs"]
    spans: list[dict[str, Any]] = lines[1:]
    (request,) = [x for x in spans if x["name"] == "request"]
    process = {x["attributes"]["messaging.message.id"]: x for x in spans if x["kind"] == "CONSUMER"}
    assert set(process) == set(ids.values())

    inside_job = process[ids["inside"]]
    assert inside_job["name"] == "process traced"
    assert (inside_job["trace"], inside_job["parent"]) == (request["trace"], request["span"])
    assert inside_job["attributes"]["messaging.destination.name"] == "default"
    assert inside_job["attributes"]["aioworker.attempt"] == 1
    assert inside_job["attributes"]["aioworker.outcome"] == "complete"
    assert inside_job["status"] == "UNSET"
    # a span the job opened is a child of the job's span
    (inner,) = [x for x in spans if x["name"] == "inside" and x["trace"] == request["trace"]]
    assert inner["parent"] == inside_job["span"]

    failing = process[ids["failing"]]
    assert (failing["trace"], failing["parent"]) == (request["trace"], request["span"])
    assert (failing["status"], failing["attributes"]["aioworker.outcome"]) == ("ERROR", "dead")

    outside = process[ids["outside"]]  # enqueued with no span current: a trace of its own
    assert outside["parent"] is None and outside["trace"] != request["trace"]


async def test_limiter_waits_are_counted_as_deferrals_with_their_delays(
    redis_url: str, prefix: str
) -> None:
    port = pick_free_port()
    w = ops.build(redis_url, prefix)
    w.metrics_port = port

    async def one_at_a_time(ctx: JobContext, n: int) -> int:
        await asyncio.sleep(0.2)
        return n

    w.task(name="capped", rate_limit=Concurrent(f"{prefix}-one", 1))(one_at_a_time)
    run = asyncio.create_task(w.run(queues=["default"], handle_signals=False))
    try:
        jobs = [await w.enqueue("capped", n) for n in range(3)]
        for job in jobs:
            await job.result(timeout=20)
        s = await scrape(port)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await w.close()
    capped = {"queue": "default", "task": "capped"}
    assert value(s, "aioworker_jobs_succeeded_total", **capped) == 3
    assert value(s, "aioworker_jobs_started_total", **capped) == 3
    deferred = value(s, "aioworker_jobs_deferred_total", **capped)
    assert deferred >= 2  # the second and third job waited for the first at least
    assert value(s, "aioworker_job_deferral_seconds_count", **capped) == deferred
    assert value(s, "aioworker_job_deferral_seconds_sum", **capped) > 0
