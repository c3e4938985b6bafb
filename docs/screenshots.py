"""Take the README's screenshots of the dashboard: ``.venv/bin/python docs/screenshots.py``.

Starts a private ``redis-server``, two workers and the standalone dashboard of
``examples/dashboard/app.py``, runs a load that rises and falls for a minute and a half
while headless Chromium (Debian's ``chromium``, launched as in the browser tests) keeps
the queues page open, then saves one PNG per page in ``docs/``.  Needs ``make venv`` and
``make browser-deps``; takes about two minutes.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import launch  # noqa: E402
from tests.redis_procs import RedisProcess, pick_free_port  # noqa: E402
from tests.worker_procs import ProcessSpawner  # noqa: E402

APP = "examples.dashboard.app:worker"
OUT = ROOT / "docs"
LOAD_S = 95.0


async def prepare(app: Any) -> None:
    """The state the pages show besides the flowing load."""
    w = app.worker
    for month in ("2026-08", "2026-09", "2026-10"):
        await app.build_report.enqueue(month, minutes=30)
    for n, minutes in enumerate((12, 45, 90, 240, 600)):
        await app.send_email.enqueue_in(minutes * 60, f"trial{n}@example.com", template="nudge")
    await app.charge_card.enqueue_in(6 * 3600, 9001, 4900)
    thumbs = app.resize_image.options(queue="thumbnails")
    for image_id in range(40):
        await thumbs.enqueue(image_id, width=320)
    await w.client.broker.connect()
    from aioworker.admin import Admin

    await Admin(w).pause("thumbnails")
    await w.scheduler.run_now("refresh-exchange-rates")


async def batches(app: Any) -> None:
    """Three batches, sized to be part done when their page is shot."""
    w = app.worker
    for description, specs in (
        (
            "Welcome emails",
            [app.send_email.call(f"new{i}@example.com", "welcome") for i in range(800)],
        ),
        ("March invoices", [app.charge_card.call(i, 1000 + i) for i in range(2000)]),
        ("Re-sync CRM accounts", [app.sync_crm.call(i) for i in range(200)]),
    ):
        batch = w.batch(description=description)
        async with batch:
            await batch.add(specs)


async def load(app: Any, seconds: float) -> None:
    """Emails and thumbnails at a rate that rises and falls."""
    start = time.monotonic()
    n = 0
    while (elapsed := time.monotonic() - start) < seconds:
        rate = 45 + 40 * math.sin(elapsed / 10)
        specs = [
            app.send_email.call(f"user{n + i}@example.com", "receipt") for i in range(int(rate))
        ]
        specs += [app.resize_image.call(n + i) for i in range(int(rate / 2))]
        await app.worker.enqueue_many(specs)
        n += len(specs)
        await asyncio.sleep(1)


async def wait_http(url: str) -> None:
    import httpx

    async with httpx.AsyncClient() as c:
        for _ in range(200):
            try:
                if (await c.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


async def main() -> None:
    chromium = os.environ.get("AIOWORKER_CHROMIUM", "/usr/bin/chromium")
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisProcess(Path(tmp) / "redis")
        redis.start()
        spawner = ProcessSpawner(Path(tmp) / "procs")
        try:
            os.environ["AIOWORKER_REDIS_URL"] = redis.url
            app = importlib.import_module("examples.dashboard.app")
            env = {"AIOWORKER_REDIS_URL": redis.url}
            run = [sys.executable, "-m", "aioworker", "run", APP]
            spawner.spawn([*run, "-q", "mail", "-q", "default"], env=env)
            spawner.spawn([*run, "-q", "default", "-q", "reports"], env=env)
            port = pick_free_port()
            board = [sys.executable, "-m", "aioworker", "dashboard", APP, "--port", str(port)]
            spawner.spawn([*board, "--refresh", "1"], env=env)
            base = f"http://127.0.0.1:{port}/"
            await wait_http(base + "api/config")
            await prepare(app)
            flow = asyncio.create_task(load(app, LOAD_S))
            async with launch(chromium) as browser:
                page = await browser.new_page(viewport={"width": 1280, "height": 800})
                await page.goto(base)
                await asyncio.sleep(LOAD_S - 60)
                await batches(app)
                await asyncio.sleep(40)
                await shoot(page, base, "queues")
                for name in ("running", "scheduled", "workers", "schedules", "batches", "limiters"):
                    await shoot(page, base + name, name)
                await page.goto(base + "dead")
                await page.locator('[data-action="traceback"]').first.click()
                await page.locator("tr.detail pre.traceback").first.wait_for()
                await page.wait_for_timeout(1200)
                await page.screenshot(path=str(OUT / "dashboard-dead.png"))
                row = page.locator("tr[data-job]").first
                job_id = await row.get_attribute("data-job")
                queue = await row.locator('td[data-col="queue"]').inner_text()
                await shoot(page, base + f"job?queue={queue}&id={job_id}", "job")
            await flow
            await app.worker.close()
        finally:
            spawner.close()
            redis.stop()


async def shoot(page: Any, url: str, name: str) -> None:
    if page.url != url:
        await page.goto(url)
    await page.wait_for_timeout(1500)  # a refresh or two
    path = OUT / f"dashboard-{name}.png"
    await page.screenshot(path=str(path))
    sys.stdout.write(f"saved {path.relative_to(ROOT)}\n")


if __name__ == "__main__":
    asyncio.run(main())
