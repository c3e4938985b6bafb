"""The dashboard in a real headless Chromium, against a real worker process and the real
``aioworker dashboard`` command: counts change as jobs are enqueued and processed, a
paused queue is resumed from the page, and a dead job is retried from the page and runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from aioworker import JobDead, JobStatus, Worker
from aioworker.admin import Admin
from tests.apps import dash
from tests.browser import launch, require_chromium
from tests.redis_procs import pick_free_port
from tests.worker_procs import WorkerSpawner

pytestmark = [pytest.mark.browser, pytest.mark.slow]

APP = "tests.apps.dash:worker"
WAIT_MS = 15_000


@dataclass
class Site:
    """A worker process, a dashboard process and a producer, all on the test's prefix."""

    base: str
    chromium: str
    w: Worker
    worker_proc: subprocess.Popen[bytes]
    spawner: WorkerSpawner


async def _wait_http(url: str, proc: subprocess.Popen[bytes], spawner: WorkerSpawner) -> None:
    deadline = time.monotonic() + 20
    async with httpx.AsyncClient() as c:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await c.get(url)).status_code == 200:
                    return
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the dashboard did not start:\n{spawner.output(proc)}")
            await asyncio.sleep(0.1)


@pytest.fixture
def chromium() -> str:
    return require_chromium()


@pytest.fixture
async def site(
    chromium: str, redis_url: str, prefix: str, spawn_worker: WorkerSpawner
) -> AsyncIterator[Site]:
    env = {"AIOWORKER_REDIS_URL": redis_url, "TEST_PREFIX": prefix, "TEST_LEASE_S": "4"}
    port = pick_free_port()
    worker_proc = spawn_worker(APP, "-q", "default", env=env)
    argv = [sys.executable, "-m", "aioworker", "dashboard", APP, "--port", str(port)]
    board = spawn_worker.spawn([*argv, "--refresh", "0.5"], env=env)
    base = f"http://127.0.0.1:{port}/"
    w = dash.build(redis_url, prefix)
    try:
        await _wait_http(base + "api/config", board, spawn_worker)
        await spawn_worker.wait_for_output_async(worker_proc, "serving default")
        yield Site(base, chromium, w, worker_proc, spawn_worker)
    finally:
        await w.close()


async def test_counts_follow_the_queue_and_resume_from_the_page(site: Site) -> None:
    from playwright.async_api import expect

    expect.set_options(timeout=WAIT_MS)  # generous: the page polls every half second
    admin = Admin(site.w)
    await admin.pause("default")
    async with launch(site.chromium) as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(site.base)
        row = page.locator('tr[data-queue="default"]')
        await expect(row.locator('td[data-col="ready"]')).to_have_text("0", timeout=WAIT_MS)
        await expect(page.locator('[data-stat="workers"] .value')).to_have_text("1")

        jobs = [await site.w.enqueue("nap", 0.01) for _ in range(5)]
        await expect(row.locator('td[data-col="ready"]')).to_have_text("5", timeout=WAIT_MS)
        await expect(page.locator('[data-stat="ready"] .value')).to_have_text("5")
        await expect(row.locator('td[data-col="state"]')).to_contain_text("paused")

        await row.locator('button[data-action="resume"]').click()
        await expect(row.locator('td[data-col="ready"]')).to_have_text("0", timeout=WAIT_MS)
        await expect(row.locator('td[data-col="state"]')).to_have_text("active")
        for job in jobs:
            assert await job.result(timeout=10) == 0.01
        # the throughput chart and the queue's trend line are drawn
        await expect(page.locator(".chart svg path.line.tp")).to_have_count(1)
        assert await row.locator("svg.spark").count() == 1
        assert errors == []


async def test_retry_a_dead_job_from_the_page(site: Site, tmp_path: Path) -> None:
    from playwright.async_api import expect

    expect.set_options(timeout=WAIT_MS)  # generous: the page polls every half second
    job = await site.w.enqueue("fail_once", str(tmp_path / "marker"))
    with pytest.raises(JobDead):
        await job.result(timeout=10)
    assert await job.status() is JobStatus.DEAD
    async with launch(site.chromium) as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(site.base)
        await expect(page.locator('[data-stat="dead"] .value')).to_have_text("1", timeout=WAIT_MS)
        await page.locator('[data-stat="dead"]').click()  # to the dead jobs page
        row = page.locator(f'tr[data-job="{job.id}"]')
        await expect(row).to_contain_text("RuntimeError: first run fails", timeout=WAIT_MS)
        await expect(row.locator('td[data-col="args"]')).to_have_text("hidden")
        await row.locator('[data-action="traceback"]').click()
        traceback = page.locator(f'tr[data-detail="{job.id}"] pre.traceback')
        await expect(traceback).to_contain_text("Traceback", timeout=WAIT_MS)
        await expect(traceback).to_contain_text('raise RuntimeError("first run fails")')
        await page.wait_for_timeout(1200)  # two refreshes: the traceback stays open
        await expect(traceback).to_be_visible()

        await row.locator('button[data-action="retry"]').click()
        await expect(page.locator(".toast")).to_contain_text("put back to run")
        await expect(page.locator(f'tr[data-job="{job.id}"]')).to_have_count(0, timeout=WAIT_MS)
        assert await job.result(timeout=10) == "ok"

        await page.goto(site.base + f"job?queue=default&id={job.id}")
        await expect(page.locator(".toolbar .badge")).to_have_text("complete", timeout=WAIT_MS)
        assert errors == []
