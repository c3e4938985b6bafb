"""Operating real worker processes: the worker registry, cancelling running jobs, job
fields on the job's own log lines, and the CLI as a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest

from aioworker import JobCancelled, JobStatus, Worker
from aioworker.cli import main
from tests.apps import ops
from tests.worker_procs import ProcessSpawner, WorkerSpawner

pytestmark = pytest.mark.slow

APP = "tests.apps.ops:worker"


@pytest.fixture
async def producer(redis_url: str, prefix: str) -> AsyncIterator[Worker]:
    w = ops.build(redis_url, prefix)
    try:
        yield w
    finally:
        await w.close()


def _env(redis_url: str, prefix: str, lease_s: float = 2.0) -> dict[str, str]:
    return {"AIOWORKER_REDIS_URL": redis_url, "TEST_PREFIX": prefix, "TEST_LEASE_S": str(lease_s)}


async def cli_json(redis_url: str, prefix: str, *argv: str) -> Any:
    """Run a command in-process (in a thread: it has its own event loop) and parse its JSON."""
    ops.worker = ops.build(redis_url, prefix)
    buf = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with contextlib.redirect_stdout(buf):
            code = await asyncio.to_thread(main, [*argv, "--json", "--log-level", "WARNING"])
    finally:  # the command set up logging of its own: put the test's back
        root.handlers[:] = handlers
        root.setLevel(level)
    assert code == 0, buf.getvalue()
    return orjson.loads(buf.getvalue())


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.1)


async def test_a_worker_is_listed_while_it_runs_and_removed_at_a_clean_exit(
    spawn_worker: WorkerSpawner, redis_url: str, prefix: str
) -> None:
    proc = spawn_worker(APP, "-q", "default", "-q", "other", env=_env(redis_url, prefix))
    await spawn_worker.wait_for_output_async(proc, "serving")

    info = await cli_json(redis_url, prefix, "info", APP)
    (w,) = info["workers"]
    assert (w["pid"], w["queues"], w["state"]) == (proc.pid, {"default": 20, "other": 5}, "running")
    assert w["id"].startswith(f"{w['hostname']}:{proc.pid}:")
    assert 0 <= w["uptime_s"] < 60

    proc.send_signal(signal.SIGTERM)
    assert await spawn_worker.wait_exit(proc) == 0
    info = await cli_json(redis_url, prefix, "info", APP)
    assert info["workers"] == []


async def test_a_killed_worker_drops_out_of_the_listing_after_its_ttl(
    spawn_worker: WorkerSpawner, redis_url: str, prefix: str
) -> None:
    # lease 2 s: the record lives 2 s past each refresh
    keep = spawn_worker(APP, env=_env(redis_url, prefix))
    doomed = spawn_worker(APP, env=_env(redis_url, prefix))
    for p in (keep, doomed):
        await spawn_worker.wait_for_output_async(p, "serving")

    async def pids() -> set[int]:
        return {w["pid"] for w in (await cli_json(redis_url, prefix, "info", APP))["workers"]}

    assert await pids() == {keep.pid, doomed.pid}
    doomed.send_signal(signal.SIGKILL)
    await spawn_worker.wait_exit(doomed)

    async def gone() -> bool:
        return await pids() == {keep.pid}

    await eventually(gone, "the killed worker is no longer listed", timeout_s=10)
    keep.send_signal(signal.SIGTERM)
    assert await spawn_worker.wait_exit(keep) == 0


async def test_cancelling_a_running_job_stops_it_and_marks_it_cancelled(
    spawn_worker: WorkerSpawner, producer: Worker, redis_url: str, prefix: str
) -> None:
    proc = spawn_worker(APP, "--log-format", "json", env=_env(redis_url, prefix))
    await spawn_worker.wait_for_output_async(proc, "serving")
    job = await producer.enqueue("block", "b1")
    await spawn_worker.wait_for_output_async(proc, "blocking job b1 started")

    # the job's own log line carries the job's fields
    lines = [orjson.loads(x) for x in spawn_worker.output(proc).splitlines() if x.startswith("{")]
    (started,) = [x for x in lines if x["msg"] == "blocking job b1 started"]
    assert (started["job_id"], started["task"], started["queue"], started["attempt"]) == (
        job.id,
        "block",
        "default",
        1,
    )

    async def checkpointed() -> bool:
        d = await cli_json(redis_url, prefix, "jobs", "show", APP, job.id)
        return bool(d["checkpoint"])

    await eventually(checkpointed, "the job saved its checkpoint", timeout_s=10)
    detail = await cli_json(redis_url, prefix, "jobs", "show", APP, job.id)
    info = await cli_json(redis_url, prefix, "info", APP)
    (w,) = info["workers"]
    assert (detail["status"], detail["worker"], detail["checkpoint"]) == (
        "running",
        w["id"],
        {"tag": "b1"},
    )
    assert [(j["id"], j["worker"]) for j in info["running"]] == [(job.id, w["id"])]

    out = await cli_json(redis_url, prefix, "cancel", APP, job.id, "--yes")
    assert [(r["outcome"], r["where"]) for r in out] == [("requested", "running")]

    async def cancelled() -> bool:
        return await job.status() is JobStatus.CANCELLED

    await eventually(cancelled, "the job is cancelled", timeout_s=10)
    with pytest.raises(JobCancelled):
        await job.result(timeout=1)
    # the worker logs the cancellation right after recording it
    text = await spawn_worker.wait_for_output_async(proc, "cancelled at an operator's request")
    assert "blocking job b1 left its sleep" in text  # the job's finally block ran
    assert text.count("blocking job b1 started") == 1  # not run again
    (line,) = [
        orjson.loads(x)
        for x in text.splitlines()
        if x.startswith("{") and "cancelled at an operator's request" in x
    ]
    assert (line["job_id"], line["event"], line["attempt"]) == (job.id, "cancelled", 1)
    stats = await cli_json(redis_url, prefix, "info", APP, "--queue", "default")
    assert (stats["queues"][0]["running"], stats["queues"][0]["cancel_requests"]) == (0, 0)

    # the worker goes on
    assert await (await producer.enqueue("add", 2, 2)).result(timeout=10) == 4
    proc.send_signal(signal.SIGTERM)
    assert await spawn_worker.wait_exit(proc) == 0


def test_the_cli_runs_as_a_subprocess_and_refuses_destructive_commands_without_a_terminal(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, prefix: str
) -> None:
    spawner = ProcessSpawner(tmp_path_factory.mktemp("cli"))
    env = _env(redis_url, prefix)
    try:
        cmd = [sys.executable, "-m", "aioworker"]
        p = spawner.spawn([*cmd, "enqueue", APP, "add", "[1, 2]", "--json"], env=env)
        assert p.wait(timeout=30) == 0, spawner.output(p)
        job_id = orjson.loads(spawner.output(p))["id"]

        p = spawner.spawn([*cmd, "cancel", APP, job_id], env=env)  # stdin is /dev/null
        assert p.wait(timeout=30) == 2
        assert "Refusing without --yes (stdin is not a terminal)" in spawner.output(p)

        p = spawner.spawn([*cmd, "jobs", APP, "--queue", "default", "--state", "ready"], env=env)
        assert p.wait(timeout=30) == 0
        text = spawner.output(p)
        assert "default / ready: 1 job(s), showing 1-1" in text and job_id in text

        p = spawner.spawn([*cmd, "cancel", APP, job_id, "--yes"], env=env)
        assert p.wait(timeout=30) == 0
        assert f"job {job_id} (queue default): cancelled (it was queued)" in spawner.output(p)
    finally:
        spawner.close()
