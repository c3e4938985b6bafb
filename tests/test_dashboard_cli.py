"""``aioworker dashboard app:worker`` as a real process: options, refusals, Redis errors."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.redis_procs import pick_free_port
from tests.worker_procs import WorkerSpawner

pytestmark = pytest.mark.slow

APP = "tests.apps.dash:worker"


def _dashboard(spawner: WorkerSpawner, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return spawner.spawn([sys.executable, "-m", "aioworker", "dashboard", APP, *args], env=env)


async def _get(url: str, proc: subprocess.Popen[bytes], spawner: WorkerSpawner) -> httpx.Response:
    """GET once the server answers."""
    deadline = time.monotonic() + 20
    async with httpx.AsyncClient() as c:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                return await c.get(url)
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the dashboard did not start:\n{spawner.output(proc)}")
            await asyncio.sleep(0.1)


async def test_standalone_read_only_with_arguments_shown(
    redis_url: str, prefix: str, spawn_worker: WorkerSpawner
) -> None:
    port = pick_free_port()
    env = {"AIOWORKER_REDIS_URL": redis_url, "TEST_PREFIX": prefix}
    proc = _dashboard(spawn_worker, "--port", str(port), "--read-only", "--show-args", env=env)
    base = f"http://127.0.0.1:{port}"

    r = await _get(base + "/api/config", proc, spawn_worker)

    assert r.json() == {"read_only": True, "show_args": True, "refresh_s": 2.0}
    async with httpx.AsyncClient() as c:
        r = await c.post(base + "/api/queues/default/pause", json={})
        assert r.status_code == 403
        assert (await c.get(base + "/api/overview")).status_code == 200
    text = spawn_worker.output(proc)
    assert f"on http://127.0.0.1:{port}/ (read-only, job arguments shown)" in text
    assert "without authentication" not in text  # loopback: no warning
    proc.send_signal(signal.SIGTERM)
    assert await spawn_worker.wait_exit(proc, timeout_s=15) in (0, -signal.SIGTERM)


async def test_root_path_behind_a_proxy(
    redis_url: str, prefix: str, spawn_worker: WorkerSpawner
) -> None:
    port = pick_free_port()
    env = {"AIOWORKER_REDIS_URL": redis_url, "TEST_PREFIX": prefix}
    proc = _dashboard(spawn_worker, "--port", str(port), "--root-path", "/jobs", env=env)

    r = await _get(f"http://127.0.0.1:{port}/", proc, spawn_worker)

    assert r.status_code == 200
    assert '<base href="/jobs/">' in r.text  # links and API calls go through the proxy


async def test_unreachable_redis_exits_with_status_3(spawn_worker: WorkerSpawner) -> None:
    port = pick_free_port()
    proc = _dashboard(
        spawn_worker, "--port", str(port), "--redis-url", "redis://127.0.0.1:1/0", env={}
    )
    assert await spawn_worker.wait_exit(proc, timeout_s=20) == 3
    text = spawn_worker.output(proc)
    assert "127.0.0.1:1" in text
    assert "Traceback" not in text


async def test_bad_refresh_is_a_usage_error(redis_url: str, spawn_worker: WorkerSpawner) -> None:
    proc = _dashboard(spawn_worker, "--refresh", "0", env={"AIOWORKER_REDIS_URL": redis_url})
    assert await spawn_worker.wait_exit(proc, timeout_s=20) == 2
    assert "refresh_s must be positive" in spawn_worker.output(proc)
