"""The ``aioworker`` command line, run for real as a child process."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from aioworker import JobStatus, Worker
from tests.apps import basic
from tests.redis_procs import pick_free_port
from tests.worker_procs import WorkerSpawner

APP = "tests.apps.basic:worker"


@pytest.fixture
async def producer(redis_url: str, prefix: str) -> AsyncIterator[Worker]:
    """The test app's worker object in this process, used to enqueue and read results."""
    w = basic.build(redis_url, prefix)
    try:
        yield w
    finally:
        await w.close()


def _env(redis_url: str, prefix: str) -> dict[str, str]:
    return {"AIOWORKER_REDIS_URL": redis_url, "TEST_PREFIX": prefix}


def _error_lines(output: str) -> list[str]:
    """The messages of the ERROR lines of a text-format log."""
    return [line.split(": ", 1)[1] for line in output.splitlines() if " ERROR " in line]


IMPORT_ERRORS = [
    pytest.param(
        "tests.apps.basic",
        'import string "tests.apps.basic" must be in the form "module:attribute", '
        'e.g. "app:worker"',
        id="format",
    ),
    pytest.param(
        "tests.apps.no_such_app:worker",
        'could not import module "tests.apps.no_such_app": no such module '
        "(is the current directory or PYTHONPATH right?)",
        id="module_missing",
    ),
    pytest.param(
        "tests.apps.broken:worker",
        'importing module "tests.apps.broken" failed inside it: '
        "No module named 'aioworker_test_missing_dependency'",
        id="import_failed",
    ),
    pytest.param(
        "tests.apps.basic:no_such_worker",
        'module "tests.apps.basic" has no attribute "no_such_worker"',
        id="attribute_missing",
    ),
    pytest.param(
        "tests.apps.basic:not_a_worker",
        '"tests.apps.basic:not_a_worker" is a str, not an aioworker Worker',
        id="not_worker",
    ),
]


@pytest.mark.parametrize(("app", "message"), IMPORT_ERRORS)
async def test_import_string_errors_exit_2_with_one_clear_line(
    spawn_worker: WorkerSpawner, app: str, message: str
) -> None:
    proc = spawn_worker(app)
    assert await spawn_worker.wait_exit(proc, timeout_s=20) == 2
    out = spawn_worker.output(proc)
    assert _error_lines(out) == [message], out
    assert "Traceback" not in out


async def test_import_string_errors_are_distinct() -> None:
    messages = [p.values[1] for p in IMPORT_ERRORS]
    assert len(set(messages)) == len(messages)


@pytest.mark.parametrize("via", ["flag", "env"])
async def test_unreachable_redis_exits_3_with_the_url_masked(
    spawn_worker: WorkerSpawner, prefix: str, via: str
) -> None:
    port = pick_free_port()  # nothing listens there
    url = f"redis://user:secret@127.0.0.1:{port}/0"
    if via == "flag":
        proc = spawn_worker(APP, "--redis-url", url, env={"TEST_PREFIX": prefix})
    else:
        proc = spawn_worker(APP, env={"AIOWORKER_REDIS_URL": url, "TEST_PREFIX": prefix})
    assert await spawn_worker.wait_exit(proc, timeout_s=30) == 3
    out = spawn_worker.output(proc)
    errors = _error_lines(out)
    assert len(errors) == 1, out
    assert errors[0].startswith(f"cannot connect to Redis at redis://user:***@127.0.0.1:{port}/0")
    assert "secret" not in out
    assert "Traceback" not in out


async def test_burst_runs_queued_jobs_and_exits_0(
    spawn_worker: WorkerSpawner, producer: Worker, redis_url: str, prefix: str
) -> None:
    add = producer.tasks["add"]
    jobs = await producer.enqueue_many([add.call(i, 100) for i in range(10)])
    proc = spawn_worker(APP, "--burst", env=_env(redis_url, prefix))
    assert await spawn_worker.wait_exit(proc, timeout_s=30) == 0, spawn_worker.output(proc)
    assert [await job.result(timeout=1) for job in jobs] == [i + 100 for i in range(10)]
    assert await producer.client.counts("default") == {
        "ready": 0,
        "scheduled": 0,
        "active": 0,
        "dead": 0,
    }


async def test_burst_with_an_empty_queue_exits_0(
    spawn_worker: WorkerSpawner, redis_url: str, prefix: str
) -> None:
    proc = spawn_worker(APP, "--burst", env=_env(redis_url, prefix))
    assert await spawn_worker.wait_exit(proc, timeout_s=20) == 0, spawn_worker.output(proc)


async def test_json_log_lines_parse_and_carry_job_fields(
    spawn_worker: WorkerSpawner, producer: Worker, redis_url: str, prefix: str
) -> None:
    ok = await producer.enqueue("add", 1, 2)
    bad = await producer.enqueue("fail", "no good")
    proc = spawn_worker(
        APP, "--burst", "--log-format", "json", "--log-level", "DEBUG", env=_env(redis_url, prefix)
    )
    assert await spawn_worker.wait_exit(proc, timeout_s=30) == 0, spawn_worker.output(proc)
    lines = [line for line in spawn_worker.output(proc).splitlines() if line.strip()]
    records: list[dict[str, Any]] = [orjson.loads(line) for line in lines]
    assert records, "the worker logged nothing"
    for record in records:
        assert isinstance(record, dict)
        assert {"ts", "level", "logger", "msg"} <= record.keys()
    failures = [r for r in records if r.get("job_id") == bad.id and r["level"] == "error"]
    assert len(failures) == 1, records
    (failure,) = failures
    assert failure["task"] == "fail"
    assert failure["queue"] == "default"
    assert failure["attempt"] == 1
    assert failure["error_class"] == "ValueError"
    assert "no good" in failure["msg"]
    assert await ok.result(timeout=1) == 3
    assert await bad.status() is JobStatus.DEAD


async def test_console_script_runs_a_worker(
    spawn_worker: WorkerSpawner, producer: Worker, redis_url: str, prefix: str
) -> None:
    script = Path(sys.executable).parent / "aioworker"
    assert script.exists(), f"console script not installed at {script}"
    job = await producer.enqueue("add", 20, 22)
    proc = spawn_worker.spawn(
        [str(script), "run", APP, "--burst", "-q", "default"], env=_env(redis_url, prefix)
    )
    assert await spawn_worker.wait_exit(proc, timeout_s=30) == 0, spawn_worker.output(proc)
    assert await job.result(timeout=1) == 42


async def test_bad_concurrency_is_a_config_error(
    spawn_worker: WorkerSpawner, redis_url: str, prefix: str
) -> None:
    proc = spawn_worker(APP, "--concurrency", "0", env=_env(redis_url, prefix))
    assert await spawn_worker.wait_exit(proc, timeout_s=20) == 2
    out = spawn_worker.output(proc)
    assert _error_lines(out) == ["configuration error: --concurrency must be at least 1"], out
    assert "Traceback" not in out
